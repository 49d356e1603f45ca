import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gzipSync } from 'node:zlib';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../src/errors';
import { failingSource } from './support/failing-source';
import { findFinishedArtifact, writeArtifact, type ArtifactRef, type BackupRef } from '../src/storage/backup-store';
import { createDecryptStream, createEncryptStream, masterKeyId, type DataKey } from '../src/storage/encryption';
import { FilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { classifyFilesystemError } from '../src/storage/filesystem-io';
import { KEYS_FILE } from '../src/storage/backup-layout';
import { FileKeyStore } from '../src/storage/key-store';

let root: string;
const masterA = randomBytes(32);
const masterB = randomBytes(32);
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'eloquent-storage-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function storeWith(masterKey: Buffer | undefined): FilesystemBackupStore {
  return new FilesystemBackupStore({ directory: root, keyStore: new FileKeyStore({ directory: root, masterKey }) });
}

/** A fresh organization and backup per test: tests never share them. */
function freshBackup(): BackupRef {
  counter += 1;
  return { orgId: `org_${counter}_${randomBytes(3).toString('hex')}`, backupId: `b${Date.now()}_${counter}` };
}

/** Several MiB that compress like real dumps (text lines) with incompressible stretches, not a multiple of 64 KiB. */
function sampleData(mebibytes: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  let line = 0;
  while (size < mebibytes * 1024 * 1024) {
    const part =
      line % 200 === 0 ? randomBytes(512) : Buffer.from(`${line}\torg_row\t${line * 7919}\tsome text that repeats\n`);
    parts.push(part);
    size += part.length;
    line++;
  }
  parts.push(Buffer.from('tail-without-alignment'));
  return Buffer.concat(parts);
}

/** Feeds `data` in uneven pieces, as a dump tool or HTTP response would. */
function streamOf(data: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const size = [1, 7_000, 65_536, 100_003, 3][i % 5] ?? 1;
    pieces.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return Readable.from(pieces);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Asserts `action` fails with a non-retryable ApplicationFailure of `type` whose message contains every `parts`. */
async function expectFailure(
  action: Promise<unknown>,
  type: FailureType,
  ...parts: string[]
): Promise<ApplicationFailure> {
  let caught: unknown;
  try {
    await action;
  } catch (err: unknown) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ApplicationFailure);
  const failure = caught as ApplicationFailure;
  expect(failure.type).toBe(type);
  expect(failure.nonRetryable).toBe(true);
  for (const part of parts) expect(failure.message).toContain(part);
  return failure;
}

function fileOf(ref: ArtifactRef): string {
  return path.join(root, ref.orgId, ref.backupId, ...ref.path.split('/'));
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)));
}

describe('round trips', () => {
  test('an already-compressed artifact is stored as is and reads back byte for byte', async () => {
    const store = storeWith(undefined);
    const ref: ArtifactRef = { ...freshBackup(), path: 'postgres/schemas.dump' };
    const data = sampleData(3);
    const record = await writeArtifact(store, ref, streamOf(data), { alreadyCompressed: true });
    expect(record).toEqual({
      path: ref.path,
      bytes: data.length,
      rawBytes: data.length,
      sha256: record.sha256,
      compression: 'none',
      encrypted: false,
    });
    expect((await readFile(fileOf(ref))).equals(data)).toBe(true);
    expect((await readAll(await store.openArtifactReader(ref))).equals(data)).toBe(true);
  });

  test('an uncompressed format is gzipped on disk and reads back byte for byte', async () => {
    const store = storeWith(undefined);
    const ref: ArtifactRef = { ...freshBackup(), path: 'postgres/shared/public.users.copy' };
    const data = sampleData(4);
    const record = await writeArtifact(store, ref, streamOf(data), { alreadyCompressed: false });
    expect(record.compression).toBe('gzip');
    expect(record.rawBytes).toBe(data.length);
    expect(record.bytes).toBeLessThan(data.length / 2);
    const stored = await readFile(fileOf(ref));
    expect(stored.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    expect((await readAll(await store.openArtifactReader(ref))).equals(data)).toBe(true);
  });

  test('a stream that arrives gzipped (ClickHouse HTTP compression) is stored as it came and reads back as the original bytes', async () => {
    const data = sampleData(4);
    const gzipped = gzipSync(data, { level: 1 });
    // Plain: the stored file is the received gzip stream, byte for byte.
    const plain = storeWith(undefined);
    const ref: ArtifactRef = { ...freshBackup(), path: 'clickhouse/kg_edges.native' };
    const record = await writeArtifact(plain, ref, streamOf(gzipped), { alreadyCompressed: false, gzipped: true });
    expect(record).toEqual({
      path: ref.path,
      bytes: gzipped.length,
      rawBytes: gzipped.length,
      sha256: record.sha256,
      compression: 'gzip',
      encrypted: false,
    });
    expect((await readFile(fileOf(ref))).equals(gzipped)).toBe(true);
    expect((await readAll(await plain.openArtifactReader(ref))).equals(data)).toBe(true);
    // Encrypted: the gzip stream is encrypted as it is, and still reads back as the original.
    const encrypted = storeWith(masterA);
    const encRef: ArtifactRef = { ...freshBackup(), path: 'clickhouse/kg_edges.native' };
    expect(
      await writeArtifact(encrypted, encRef, streamOf(gzipped), { alreadyCompressed: false, gzipped: true }),
    ).toMatchObject({ compression: 'gzip', encrypted: true, rawBytes: gzipped.length });
    expect((await readAll(await encrypted.openArtifactReader(encRef))).equals(data)).toBe(true);
    // A stream that only claimed to be gzip is caught on read, naming the artifact.
    const liar: ArtifactRef = { ...freshBackup(), path: 'clickhouse/liar.native' };
    await writeArtifact(plain, liar, streamOf(data), { alreadyCompressed: false, gzipped: true });
    await expect(readAll(await plain.openArtifactReader(liar))).rejects.toThrow(/liar\.native/);
  });

  test('an encrypted, gzipped multi-MiB artifact reads back byte for byte and holds no plaintext', async () => {
    const store = storeWith(masterA);
    const ref: ArtifactRef = { ...freshBackup(), path: 'clickhouse/kg_nodes.native' };
    const data = sampleData(6);
    const record = await writeArtifact(store, ref, streamOf(data), { alreadyCompressed: false });
    expect(record).toMatchObject({ compression: 'gzip', encrypted: true, rawBytes: data.length });
    expect(record.keyId).toMatch(/^dk_[0-9a-f]{16}$/);
    const stored = await readFile(fileOf(ref));
    expect(stored.subarray(0, 6).toString('ascii')).toBe('ELQENC');
    expect(stored.includes(Buffer.from('some text that repeats'))).toBe(false);
    expect((await readAll(await store.openArtifactReader(ref))).equals(data)).toBe(true);
  });

  test('encrypted already-compressed artifacts and empty artifacts round-trip', async () => {
    const store = storeWith(masterA);
    const backup = freshBackup();
    const dump: ArtifactRef = { ...backup, path: 'postgres/schemas.dump' };
    const empty: ArtifactRef = { ...backup, path: 'clickhouse/empty.native' };
    const exact = randomBytes(64 * 1024 * 3); // a multiple of the chunk size: ends with an empty final chunk
    expect((await writeArtifact(store, dump, streamOf(exact), { alreadyCompressed: true })).compression).toBe('none');
    await writeArtifact(store, empty, Readable.from([]), { alreadyCompressed: false });
    expect((await readAll(await store.openArtifactReader(dump))).equals(exact)).toBe(true);
    expect((await readAll(await store.openArtifactReader(empty))).length).toBe(0);
  });

  test('the recorded sha256 and size are those of the stored file, as sha256sum would print', async () => {
    const store = storeWith(masterA);
    const ref: ArtifactRef = { ...freshBackup(), path: 'clickhouse/kg_edges.native' };
    const record = await writeArtifact(store, ref, streamOf(sampleData(2)), { alreadyCompressed: false });
    const stored = await readFile(fileOf(ref));
    expect(record.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    expect(record.bytes).toBe(stored.length);
    const stat = await store.statArtifact(ref);
    expect(stat).toMatchObject({ exists: true, sha256: record.sha256, bytes: record.bytes, keyId: record.keyId });
    expect(await store.listArtifacts(ref)).toEqual([record]);
  });
});

describe('atomic commit', () => {
  test('an aborted writer leaves neither the artifact nor a temporary file', async () => {
    const store = storeWith(masterA);
    const ref: ArtifactRef = { ...freshBackup(), path: 'postgres/schemas.dump' };
    const writer = await store.openArtifactWriter(ref, { alreadyCompressed: false });
    writer.stream.write(sampleData(1));
    await new Promise((resolve) => setImmediate(resolve));
    await writer.abort();
    expect(await filesUnder(path.join(root, ref.orgId, ref.backupId, 'postgres'))).toEqual([]);
    expect(await store.statArtifact(ref)).toEqual({ exists: false });
  });

  test('a write that never commits (a killed worker) is invisible, and its temporary file is removable', async () => {
    const store = storeWith(undefined);
    const backup = freshBackup();
    const ref: ArtifactRef = { ...backup, path: 'clickhouse/kg_nodes.native' };
    const writer = await store.openArtifactWriter(ref, { alreadyCompressed: false });
    await new Promise<void>((resolve) => writer.stream.write(sampleData(1), () => resolve()));
    expect(await store.statArtifact(ref)).toEqual({ exists: false });
    await expectFailure(
      store.openArtifactReader(ref),
      FailureType.UnknownBackup,
      `${ref.orgId}/${ref.backupId}/clickhouse/kg_nodes.native`,
    );
    const [listing] = await store.listBackups(backup.orgId);
    expect(listing).toMatchObject({ backupId: backup.backupId, complete: false, artifactCount: 0, temporaryFiles: 1 });
    const removed = await store.removeTemporaryFiles(backup);
    expect(removed).toHaveLength(1);
    expect(removed[0]).toMatch(/^clickhouse\/\.kg_nodes\.native\.tmp-[0-9a-f]{12}$/);
    await writer.abort();
    expect(await filesUnder(path.join(root, backup.orgId, backup.backupId, 'clickhouse'))).toEqual([]);
  });

  test('a worker killed (SIGKILL) while replacing an artifact leaves the previous version intact and only a temporary file', async () => {
    const store = storeWith(masterA);
    const backup = freshBackup();
    const ref: ArtifactRef = { ...backup, path: 'postgres/schemas.dump' };
    const previous = randomBytes(200_000);
    const committed = await writeArtifact(store, ref, streamOf(previous), { alreadyCompressed: true });
    const script = path.join(root, `killed-writer-${backup.orgId}.ts`);
    const repo = path.resolve(__dirname, '..');
    await writeFile(
      script,
      `import { FilesystemBackupStore } from ${JSON.stringify(path.join(repo, 'src/storage/filesystem-backup-store'))};
import { FileKeyStore } from ${JSON.stringify(path.join(repo, 'src/storage/key-store'))};
const masterKey = Buffer.from(${JSON.stringify(masterA.toString('base64'))}, 'base64');
const store = new FilesystemBackupStore({ directory: ${JSON.stringify(root)}, keyStore: new FileKeyStore({ directory: ${JSON.stringify(root)}, masterKey }) });
void (async () => {
  const writer = await store.openArtifactWriter(${JSON.stringify(ref)}, { alreadyCompressed: true });
  const chunk = Buffer.alloc(256 * 1024, 7);
  for (let i = 0; ; i++) {
    await new Promise<void>((resolve) => writer.stream.write(chunk, () => resolve()));
    if (i === 8) process.stdout.write('writing\\n');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
})();
`,
    );
    // node itself (not the tsx wrapper, which forks) so that SIGKILL hits the process that writes.
    const child = spawn(process.execPath, ['--import', 'tsx', script], {
      cwd: repo,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    try {
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (text: Buffer) => {
          if (text.toString().includes('writing')) resolve();
        });
        child.on('exit', (code) => reject(new Error(`writer exited early with code ${String(code)}`)));
      });
    } finally {
      child.kill('SIGKILL');
    }
    expect(await exited).toBe('SIGKILL');

    expect(await store.statArtifact(ref)).toMatchObject({ exists: true, sha256: committed.sha256 });
    expect((await readAll(await store.openArtifactReader(ref))).equals(previous)).toBe(true);
    const removed = await store.removeTemporaryFiles(backup);
    expect(removed).toEqual([expect.stringMatching(/^postgres\/\.schemas\.dump\.tmp-[0-9a-f]{12}$/)]);
    expect((await filesUnder(path.join(root, backup.orgId, backup.backupId, 'postgres'))).sort()).toEqual([
      'schemas.dump',
      'schemas.dump.meta.json',
    ]);
  });

  test('committing again replaces the artifact, and a retry can skip an artifact whose checksum still matches', async () => {
    const store = storeWith(masterA);
    const ref: ArtifactRef = { ...freshBackup(), path: 'postgres/schemas.dump' };
    const first = await writeArtifact(store, ref, streamOf(randomBytes(100_000)), { alreadyCompressed: true });
    expect(await findFinishedArtifact(store, ref, first.sha256)).toEqual(first);
    expect(await findFinishedArtifact(store, ref, 'f'.repeat(64))).toBeUndefined();
    const second = await writeArtifact(store, ref, streamOf(randomBytes(50_000)), { alreadyCompressed: true });
    expect(second.sha256).not.toBe(first.sha256);
    expect(
      (await store.statArtifact(ref)).exists && (await store.verifyArtifactChecksum(ref, second.sha256)).matches,
    ).toBe(true);
    const stored = await readFile(fileOf(ref));
    stored[100] = (stored[100] ?? 0) ^ 0xff;
    await writeFile(fileOf(ref), stored);
    expect(await store.verifyArtifactChecksum(ref, second.sha256)).toMatchObject({
      exists: true,
      matches: false,
      bytes: second.bytes,
    });
    expect(await findFinishedArtifact(store, ref)).toBeUndefined();
    expect(await store.verifyArtifactChecksum({ ...ref, path: 'postgres/missing.dump' }, second.sha256)).toMatchObject({
      exists: false,
      matches: false,
    });
  });

  test('the manifest is written atomically, read back, and its name is checked', async () => {
    const store = storeWith(undefined);
    const backup = freshBackup();
    expect(await store.readJson(backup, 'manifest.json')).toBeUndefined();
    await store.writeJson(backup, 'manifest.json', { formatVersion: 1, artifacts: [] });
    await store.writeJson(backup, 'manifest.json', { formatVersion: 1, artifacts: ['x'] });
    expect(await store.readJson(backup, 'manifest.json')).toEqual({ formatVersion: 1, artifacts: ['x'] });
    expect((await filesUnder(path.join(root, backup.orgId, backup.backupId))).sort()).toEqual([
      '.backup.json',
      'manifest.json',
    ]);
    await expectFailure(
      store.writeJson(backup, '../manifest.json', {}),
      FailureType.InvalidInput,
      '"../manifest.json"',
    );
  });
});

describe('corruption is detected, never returned', () => {
  test('a flipped byte in an encrypted artifact fails with DecryptionFailed naming the artifact', async () => {
    const store = storeWith(masterA);
    const ref: ArtifactRef = { ...freshBackup(), path: 'clickhouse/kg_nodes.native' };
    await writeArtifact(store, ref, streamOf(sampleData(2)), { alreadyCompressed: false });
    const stored = await readFile(fileOf(ref));
    const middle = Math.floor(stored.length / 2);
    stored[middle] = (stored[middle] ?? 0) ^ 0x01;
    await writeFile(fileOf(ref), stored);
    await expectFailure(
      readAll(await store.openArtifactReader(ref)),
      FailureType.DecryptionFailed,
      `${ref.orgId}/${ref.backupId}/clickhouse/kg_nodes.native`,
      'failed authentication at chunk',
    );
  });

  test('a truncated artifact is refused before any byte is read', async () => {
    const store = storeWith(masterA);
    const ref: ArtifactRef = { ...freshBackup(), path: 'postgres/schemas.dump' };
    const record = await writeArtifact(store, ref, streamOf(randomBytes(300_000)), { alreadyCompressed: true });
    await truncate(fileOf(ref), record.bytes - 100);
    await expectFailure(
      store.openArtifactReader(ref),
      FailureType.ChecksumMismatch,
      'postgres/schemas.dump',
      'truncated',
    );
  });

  test('a truncated gzip artifact whose metadata was rewritten to match still fails with ChecksumMismatch', async () => {
    const store = storeWith(undefined);
    const ref: ArtifactRef = { ...freshBackup(), path: 'postgres/shared/public.users.copy' };
    await writeArtifact(store, ref, streamOf(sampleData(2)), { alreadyCompressed: false });
    const full = await readFile(fileOf(ref));
    const cut = full.subarray(0, Math.floor(full.length / 2));
    await writeFile(fileOf(ref), cut);
    const sidecarPath = `${fileOf(ref)}.meta.json`;
    const sidecar = JSON.parse(await readFile(sidecarPath, 'utf8')) as Record<string, unknown>;
    await writeFile(
      sidecarPath,
      JSON.stringify({ ...sidecar, bytes: cut.length, sha256: createHash('sha256').update(cut).digest('hex') }),
    );
    await expectFailure(
      readAll(await store.openArtifactReader(ref)),
      FailureType.ChecksumMismatch,
      'public.users.copy',
      'gzip',
    );
  });

  test('a plain artifact altered in place fails its stored checksum at the end of the stream', async () => {
    const store = storeWith(undefined);
    const ref: ArtifactRef = { ...freshBackup(), path: 'postgres/schemas.dump' };
    await writeArtifact(store, ref, streamOf(randomBytes(200_000)), { alreadyCompressed: true });
    const stored = await readFile(fileOf(ref));
    stored[5] = (stored[5] ?? 0) ^ 0xff;
    await writeFile(fileOf(ref), stored);
    await expectFailure(
      readAll(await store.openArtifactReader(ref)),
      FailureType.ChecksumMismatch,
      'postgres/schemas.dump',
      'hashes to',
    );
  });

  test('an encrypted stream cut at a chunk boundary fails as truncated instead of ending early', async () => {
    const dataKey: DataKey = { orgId: 'org_x', keyId: 'dk_0123456789abcdef', key: randomBytes(32) };
    const plaintext = randomBytes(64 * 1024 * 3 + 10);
    const sealed = await readAll(Readable.from([plaintext]).pipe(createEncryptStream(dataKey)));
    const headerBytes = 6 + 1 + 1 + 4 + 8 + 1 + dataKey.keyId.length;
    const twoChunks = sealed.subarray(0, headerBytes + 2 * (64 * 1024 + 16));
    await expectFailure(
      readAll(Readable.from([twoChunks]).pipe(createDecryptStream(dataKey, 'org_x/b/t.native'))),
      FailureType.DecryptionFailed,
      'org_x/b/t.native',
      'the last one',
    );
    const extended = Buffer.concat([sealed, randomBytes(16)]);
    await expectFailure(
      readAll(Readable.from([extended]).pipe(createDecryptStream(dataKey, 'org_x/b/t.native'))),
      FailureType.DecryptionFailed,
      'failed authentication',
    );
    expect(
      (await readAll(Readable.from([sealed]).pipe(createDecryptStream(dataKey, 'org_x/b/t.native')))).equals(plaintext),
    ).toBe(true);
  });
});

describe('keys', () => {
  test('reading without a master key or with a wrong one fails clearly', async () => {
    const ref: ArtifactRef = { ...freshBackup(), path: 'clickhouse/kg_nodes.native' };
    await writeArtifact(storeWith(masterA), ref, streamOf(sampleData(1)), { alreadyCompressed: false });
    await expectFailure(
      storeWith(undefined).openArtifactReader(ref),
      FailureType.DecryptionFailed,
      'no master key is configured',
      ref.orgId,
    );
    await expectFailure(
      storeWith(masterB).openArtifactReader(ref),
      FailureType.DecryptionFailed,
      `wrapped under master key ${masterKeyId(masterA)}`,
      masterKeyId(masterB),
    );
  });

  test('a wrong data key fails every chunk instead of producing output', async () => {
    const keyId = 'dk_00000000000000aa';
    const sealed = await readAll(
      Readable.from([randomBytes(1000)]).pipe(createEncryptStream({ orgId: 'o', keyId, key: randomBytes(32) })),
    );
    await expectFailure(
      readAll(
        Readable.from([sealed]).pipe(createDecryptStream({ orgId: 'o', keyId, key: randomBytes(32) }, 'o/b/x.native')),
      ),
      FailureType.DecryptionFailed,
      'o/b/x.native',
    );
  });

  test('parallel writers of one organization share one data key', async () => {
    const keyStore = new FileKeyStore({ directory: root, masterKey: masterA });
    const { orgId } = freshBackup();
    const keys = await Promise.all(
      Array.from({ length: 12 }, () =>
        new FileKeyStore({ directory: root, masterKey: masterA }).getOrCreateDataKey(orgId),
      ),
    );
    expect(new Set(keys.map((key) => key.keyId)).size).toBe(1);
    expect((await keyStore.getOrCreateDataKey(orgId)).key.equals(keys[0]?.key ?? Buffer.alloc(0))).toBe(true);
  });

  test('rotating the master key re-wraps data keys only: old artifacts read with the new key and not with the old', async () => {
    const rotationRoot = await mkdtemp(path.join(root, 'rotation-'));
    const store = (master: Buffer | undefined) =>
      new FilesystemBackupStore({
        directory: rotationRoot,
        keyStore: new FileKeyStore({ directory: rotationRoot, masterKey: master }),
      });
    const data = sampleData(1);
    const refs: ArtifactRef[] = [
      { orgId: 'org_a', backupId: 'b1', path: 'clickhouse/t.native' },
      { orgId: 'org_b', backupId: 'b1', path: 'postgres/schemas.dump' },
    ];
    const records = [];
    for (const ref of refs)
      records.push(await writeArtifact(store(masterA), ref, streamOf(data), { alreadyCompressed: false }));
    const artifactBefore = await stat(path.join(rotationRoot, 'org_a', 'b1', 'clickhouse', 't.native'));
    const keysBefore = await readFile(path.join(rotationRoot, 'org_a', KEYS_FILE), 'utf8');

    const report = await new FileKeyStore({ directory: rotationRoot, masterKey: masterA }).rotateMasterKey(
      masterA,
      masterB,
    );
    expect(report).toEqual({
      fromMasterKeyId: masterKeyId(masterA),
      toMasterKeyId: masterKeyId(masterB),
      rewrapped: ['org_a', 'org_b'],
      alreadyRotated: [],
    });

    const artifactAfter = await stat(path.join(rotationRoot, 'org_a', 'b1', 'clickhouse', 't.native'));
    expect(artifactAfter.mtimeMs).toBe(artifactBefore.mtimeMs);
    expect(await readFile(path.join(rotationRoot, 'org_a', KEYS_FILE), 'utf8')).not.toBe(keysBefore);
    for (const [i, ref] of refs.entries()) {
      expect((await store(masterB).verifyArtifactChecksum(ref, records[i]?.sha256 ?? '')).matches).toBe(true);
      expect((await readAll(await store(masterB).openArtifactReader(ref))).equals(data)).toBe(true);
      await expectFailure(store(masterA).openArtifactReader(ref), FailureType.DecryptionFailed, masterKeyId(masterB));
    }
    // An interrupted rotation is finished by running it again.
    const again = await new FileKeyStore({ directory: rotationRoot, masterKey: masterB }).rotateMasterKey(
      masterA,
      masterB,
    );
    expect(again).toMatchObject({ rewrapped: [], alreadyRotated: ['org_a', 'org_b'] });
  });

  test('destroying an organization data key makes its artifacts unreadable and leaves other organizations alone', async () => {
    const store = storeWith(masterA);
    const victim: ArtifactRef = { ...freshBackup(), path: 'clickhouse/kg_nodes.native' };
    const bystander: ArtifactRef = { ...freshBackup(), path: 'clickhouse/kg_nodes.native' };
    const data = sampleData(1);
    const record = await writeArtifact(store, victim, streamOf(data), { alreadyCompressed: false });
    await writeArtifact(store, bystander, streamOf(data), { alreadyCompressed: false });
    const wrappedBefore = JSON.parse(await readFile(path.join(root, victim.orgId, KEYS_FILE), 'utf8')) as {
      dataKey: { wrapped: { ciphertext: string } };
    };

    const keyStore = new FileKeyStore({ directory: root, masterKey: masterA });
    expect(await keyStore.destroyDataKey(victim.orgId)).toEqual({ destroyedKeyIds: [record.keyId] });
    expect(await keyStore.destroyDataKey(victim.orgId)).toEqual({ destroyedKeyIds: [] });

    const keysText = await readFile(path.join(root, victim.orgId, KEYS_FILE), 'utf8');
    expect(keysText).not.toContain(wrappedBefore.dataKey.wrapped.ciphertext);
    expect(JSON.parse(keysText)).toMatchObject({ dataKey: null, destroyed: [{ keyId: record.keyId }] });
    await expectFailure(
      store.openArtifactReader(victim),
      FailureType.DecryptionFailed,
      'destroyed (crypto-shredded)',
      record.keyId ?? 'no key id',
    );
    // Checksums still verify without keys: verification of what remains does not need them.
    expect((await store.verifyArtifactChecksum(victim, record.sha256)).matches).toBe(true);
    expect((await readAll(await store.openArtifactReader(bystander))).equals(data)).toBe(true);
    // A later backup of a re-created organization gets a new key, never the destroyed one.
    expect((await keyStore.getOrCreateDataKey(victim.orgId)).keyId).not.toBe(record.keyId);
    await expectFailure(store.openArtifactReader(victim), FailureType.DecryptionFailed, 'destroyed');
  });
});

describe('paths and listing', () => {
  test.each([
    ['../escape.dump', 'unsafe segment ".."'],
    ['postgres/../../etc/passwd', 'unsafe segment ".."'],
    ['/etc/passwd', 'unsafe segment ""'],
    ['postgres//x.copy', 'unsafe segment ""'],
    ['postgres/.hidden', 'unsafe segment ".hidden"'],
    ['postgres/-rf', 'unsafe segment "-rf"'],
    ['postgres/a b.copy', 'unsafe segment "a b.copy"'],
    ['postgres/x\0.copy', 'unsafe segment "x\\u0000.copy"'],
    ['schemas.dump', 'must have 2 to 6'],
    ['postgres/schemas.dump.meta.json', 'reserved suffix ".meta.json"'],
  ])('the artifact path %j is refused (%s) and nothing is created', async (badPath, why) => {
    const store = storeWith(undefined);
    const backup = freshBackup();
    await expectFailure(
      store.openArtifactWriter({ ...backup, path: badPath }, { alreadyCompressed: true }),
      FailureType.InvalidInput,
      JSON.stringify(badPath),
      why,
    );
    expect(await filesUnder(path.join(root, backup.orgId))).toEqual([]);
  });

  test('unsafe organization and backup ids are refused', async () => {
    const store = storeWith(undefined);
    await expectFailure(store.listBackups('..'), FailureType.InvalidInput, 'organization id ".."');
    await expectFailure(
      store.deleteBackup({ orgId: 'org_ok', backupId: 'a/b' }),
      FailureType.InvalidInput,
      'backup id "a/b"',
    );
    await expectFailure(
      store.openArtifactReader({ orgId: 'org/..', backupId: 'b', path: 'postgres/x' }),
      FailureType.InvalidInput,
      '"org/.."',
    );
  });

  test('listBackups lists newest first with completeness, and listOrganizations finds the organization', async () => {
    const store = storeWith(masterA);
    const { orgId } = freshBackup();
    for (const backupId of ['b_old', 'b_mid', 'b_new']) {
      await writeArtifact(store, { orgId, backupId, path: 'postgres/schemas.dump' }, streamOf(randomBytes(1000)), {
        alreadyCompressed: true,
      });
      if (backupId !== 'b_mid') await store.writeJson({ orgId, backupId }, 'manifest.json', { backupId });
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    await store.writeJson({ orgId, backupId: 'b_new' }, 'verification.json', { ok: true });
    const listings = await store.listBackups(orgId);
    expect(
      listings.map((listing) => [listing.backupId, listing.complete, listing.verified, listing.artifactCount]),
    ).toEqual([
      ['b_new', true, true, 1],
      ['b_mid', false, false, 1],
      ['b_old', true, false, 1],
    ]);
    expect(listings[0]?.storedBytes).toBeGreaterThan(1000);
    expect(await store.listOrganizations()).toContain(orgId);
    expect(await store.listBackups('org_never_seen')).toEqual([]);
  });

  test('deleting a backup removes it, keeps the keys, and is idempotent', async () => {
    const store = storeWith(masterA);
    const backup = freshBackup();
    const ref: ArtifactRef = { ...backup, path: 'clickhouse/kg_nodes.native' };
    await writeArtifact(store, ref, streamOf(randomBytes(1000)), { alreadyCompressed: false });
    await store.writeJson(backup, 'manifest.json', {});
    expect(await store.deleteBackup(backup)).toEqual({ deleted: true });
    expect(await store.deleteBackup(backup)).toEqual({ deleted: false });
    expect(await store.listBackups(backup.orgId)).toEqual([]);
    expect(await readdir(path.join(root, backup.orgId))).toEqual([KEYS_FILE]);
  });
});

describe('errors', () => {
  test('a full disk is a non-retryable DiskFull naming the artifact; an I/O hiccup stays retryable', () => {
    const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
    const failure = classifyFilesystemError(enospc, {
      store: 'storage',
      orgId: 'org_a',
      object: 'org_a/b1/postgres/schemas.dump',
    });
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: FailureType.DiskFull, nonRetryable: true });
    expect(failure.message).toContain('[storage org=org_a object=org_a/b1/postgres/schemas.dump]');
    const eio = Object.assign(new Error('EIO'), { code: 'EIO' });
    expect(classifyFilesystemError(eio, { store: 'storage' })).toBe(eio);
  });

  test('a source that fails midway (a dump tool that dies) leaves nothing behind', async () => {
    const store = storeWith(undefined);
    const ref: ArtifactRef = { ...freshBackup(), path: 'postgres/schemas.dump' };
    const writer = await store.openArtifactWriter(ref, { alreadyCompressed: true });
    const failing = failingSource('pg_dump exited with code 1');
    await expect(pipeline(failing, writer.stream)).rejects.toThrow('pg_dump exited with code 1');
    await expect(writer.commit()).rejects.toThrow();
    await writer.abort();
    expect(await filesUnder(path.join(root, ref.orgId, ref.backupId, 'postgres'))).toEqual([]);
  });
});

describe('documents', () => {
  it('deleteJson removes a document such as a hold, is idempotent, and never removes the manifest', async () => {
    const store = storeWith(undefined);
    const backup = freshBackup();
    await store.writeJson(backup, 'manifest.json', { backupId: backup.backupId });
    await store.writeJson(backup, 'hold.json', { heldBy: 'delete-org-x' });
    expect(await store.deleteJson(backup, 'hold.json')).toEqual({ deleted: true });
    expect(await store.readJson(backup, 'hold.json')).toBeUndefined();
    expect(await store.deleteJson(backup, 'hold.json')).toEqual({ deleted: false });
    await expect(store.deleteJson(backup, 'manifest.json')).rejects.toThrow(/only with its whole backup/);
    expect(await store.readJson(backup, 'manifest.json')).toEqual({ backupId: backup.backupId });
  });
});
