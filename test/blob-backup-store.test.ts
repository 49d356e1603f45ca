import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType, type FailureContext } from '../src/errors';
import { compressionFor } from '../src/storage/artifact-pipeline';
import { artifactKey, documentKey, keysKey, markerKey, sidecarKey } from '../src/storage/backup-layout';
import { findFinishedArtifact, writeArtifact, type ArtifactRef } from '../src/storage/backup-store';
import { BlobBackupStore } from '../src/storage/blob-backup-store';
import { readBlob, type BlobStore, type BlobUpload } from '../src/storage/blob-store';
import type { DataKey } from '../src/storage/encryption';
import { InMemoryBlobs } from '../src/storage/in-memory-blobs';
import type { KeyStore, RotationReport } from '../src/storage/key-store';
import { failingSource } from './support/failing-source';

/** The store's pipeline, commit protocol and layout, on blobs in memory: no disk, no keys file. */

/** One data key per organization in a Map: enough for the store, which only asks for keys. */
class MapKeyStore implements KeyStore {
  readonly masterKeyId: string | undefined;
  private readonly keys = new Map<string, DataKey>();

  constructor(encrypts: boolean) {
    this.masterKeyId = encrypts ? 'mk_test' : undefined;
  }

  async getOrCreateDataKey(orgId: string): Promise<DataKey> {
    const key = this.keys.get(orgId) ?? { orgId, keyId: `dk_${randomBytes(8).toString('hex')}`, key: randomBytes(32) };
    this.keys.set(orgId, key);
    return key;
  }

  async getDataKey(orgId: string, keyId: string): Promise<DataKey> {
    const key = this.keys.get(orgId);
    if (key?.keyId !== keyId)
      throw ApplicationFailure.nonRetryable(`no data key ${keyId}`, FailureType.DecryptionFailed);
    return key;
  }

  async destroyDataKey(orgId: string): Promise<{ destroyedKeyIds: string[] }> {
    const key = this.keys.get(orgId);
    this.keys.delete(orgId);
    return { destroyedKeyIds: key ? [key.keyId] : [] };
  }

  async rotateMasterKey(): Promise<RotationReport> {
    throw new Error('not used by these tests');
  }
}

/** Blobs that record every change, in order: the commit protocol is the order of these. */
class RecordingBlobs implements BlobStore {
  readonly location = 'memory:recorded';
  readonly changes: string[] = [];

  constructor(readonly inner: InMemoryBlobs) {}

  async create(key: string, _context: FailureContext): Promise<BlobUpload> {
    const upload = await this.inner.create(key);
    this.changes.push(`create ${key}`);
    return {
      stream: upload.stream,
      commit: async () => {
        await upload.commit();
        this.changes.push(`commit ${key}`);
      },
      abort: async () => {
        await upload.abort();
        this.changes.push(`abort ${key}`);
      },
    };
  }
  async put(key: string, content: string | Buffer): Promise<void> {
    await this.inner.put(key, content);
    this.changes.push(`put ${key}`);
  }
  async putIfAbsent(key: string, content: string | Buffer): Promise<boolean> {
    const wrote = await this.inner.putIfAbsent(key, content);
    if (wrote) this.changes.push(`put ${key}`);
    return wrote;
  }
  get = (key: string) => this.inner.get(key);
  stat = (key: string) => this.inner.stat(key);
  list = (prefix: string) => this.inner.list(prefix);
  listPrefixes = (prefix: string) => this.inner.listPrefixes(prefix);
  listUnfinished = (prefix: string) => this.inner.listUnfinished(prefix);
  async delete(key: string): Promise<boolean> {
    const existed = await this.inner.delete(key);
    this.changes.push(`delete ${key}${existed ? '' : ' (absent)'}`);
    return existed;
  }
  async deletePrefix(prefix: string): Promise<boolean> {
    const existed = await this.inner.deletePrefix(prefix);
    this.changes.push(`deletePrefix ${prefix}`);
    return existed;
  }
}

function storeOn(encrypts = false): { store: BlobBackupStore; blobs: RecordingBlobs; memory: InMemoryBlobs } {
  const memory = new InMemoryBlobs();
  const blobs = new RecordingBlobs(memory);
  return { store: new BlobBackupStore({ blobs, keyStore: new MapKeyStore(encrypts) }), blobs, memory };
}

function text(lines: number): Buffer {
  return Buffer.from(Array.from({ length: lines }, (_, i) => `${i}\torg_a\trow ${i * 7919}\n`).join(''));
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const ref: ArtifactRef = { orgId: 'org_a', backupId: 'b1', path: 'postgres/shared/public.users.copy' };

describe('layout', () => {
  test('every name of a backup is built by the layout, in the folder of its organization', () => {
    expect(artifactKey(ref)).toBe('org_a/b1/postgres/shared/public.users.copy');
    expect(sidecarKey(ref)).toBe('org_a/b1/postgres/shared/public.users.copy.meta.json');
    expect(documentKey(ref, 'manifest.json')).toBe('org_a/b1/manifest.json');
    expect(markerKey(ref)).toBe('org_a/b1/.backup.json');
    expect(keysKey('org_a')).toBe('org_a/keys.json');
    expect(() => documentKey(ref, 'manifest.txt')).toThrow(/must be a safe file name ending in ".json"/);
  });
});

describe('artifact pipeline and commit protocol', () => {
  test('an artifact is written as marker, upload, old sidecar dropped, data committed, sidecar last', async () => {
    const { store, blobs } = storeOn();
    await writeArtifact(store, ref, Readable.from([text(100)]), { alreadyCompressed: false });
    expect(blobs.changes).toEqual([
      'put org_a/b1/.backup.json',
      'create org_a/b1/postgres/shared/public.users.copy',
      'delete org_a/b1/postgres/shared/public.users.copy.meta.json (absent)',
      'commit org_a/b1/postgres/shared/public.users.copy',
      'put org_a/b1/postgres/shared/public.users.copy.meta.json',
    ]);
  });

  test('the record describes the stored bytes: their size and SHA-256, gzip of the original, nothing encrypted', async () => {
    const { store, memory } = storeOn();
    const original = text(2000);
    const record = await writeArtifact(store, ref, Readable.from([original]), { alreadyCompressed: false });
    const stored = (await readBlob(memory, artifactKey(ref))) ?? Buffer.alloc(0);
    expect(record).toEqual({
      path: ref.path,
      bytes: stored.length,
      rawBytes: original.length,
      sha256: createHash('sha256').update(stored).digest('hex'),
      compression: 'gzip',
      encrypted: false,
    });
    expect(gunzipSync(stored).equals(original)).toBe(true);
    expect((await readAll(await store.openArtifactReader(ref))).equals(original)).toBe(true);
  });

  test('compression follows the format: compressed formats as they are, everything else and gzip streams as gzip', () => {
    expect(compressionFor({ alreadyCompressed: true })).toBe('none');
    expect(compressionFor({ alreadyCompressed: false })).toBe('gzip');
    expect(compressionFor({ alreadyCompressed: false, gzipped: true })).toBe('gzip');
  });

  test('an encrypted artifact holds no plaintext and reads back under its key', async () => {
    const { store, memory } = storeOn(true);
    const original = text(500);
    const record = await writeArtifact(
      store,
      { ...ref, path: 'clickhouse/kg_nodes.native' },
      Readable.from([original]),
      { alreadyCompressed: true },
    );
    expect(record).toMatchObject({ compression: 'none', encrypted: true, keyId: expect.stringMatching(/^dk_/) });
    const stored = (await readBlob(memory, 'org_a/b1/clickhouse/kg_nodes.native')) ?? Buffer.alloc(0);
    expect(stored.subarray(0, 6).toString('ascii')).toBe('ELQENC');
    expect(stored.includes(Buffer.from('org_a\trow'))).toBe(false);
    expect(
      (await readAll(await store.openArtifactReader({ ...ref, path: 'clickhouse/kg_nodes.native' }))).equals(original),
    ).toBe(true);
  });

  test('while an artifact is replaced the previous one stays whole; a sidecar without data, or data without sidecar, is no artifact', async () => {
    const { store, memory } = storeOn();
    const first = await writeArtifact(store, ref, Readable.from([text(10)]), { alreadyCompressed: false });
    const writer = await store.openArtifactWriter(ref, { alreadyCompressed: false });
    await new Promise<void>((resolve) => writer.stream.write(text(20), () => resolve()));
    expect(await findFinishedArtifact(store, ref, first.sha256)).toEqual(first);
    expect((await store.listBackups('org_a'))[0]).toMatchObject({ artifactCount: 1, temporaryFiles: 1 });
    await writer.abort();
    expect(await store.removeTemporaryFiles(ref)).toEqual([]);

    await memory.delete(sidecarKey(ref));
    expect(await store.statArtifact(ref)).toEqual({ exists: false });
    await writeArtifact(store, ref, Readable.from([text(10)]), { alreadyCompressed: false });
    await memory.delete(artifactKey(ref));
    expect(await store.statArtifact(ref)).toEqual({ exists: false });
    expect(await store.listArtifacts(ref)).toEqual([]);
  });

  test('stored bytes that were altered are never returned: a changed size is refused up front, a changed byte at the end', async () => {
    const { store, memory } = storeOn();
    const dump: ArtifactRef = { ...ref, path: 'postgres/schemas.dump' };
    const record = await writeArtifact(store, dump, Readable.from([randomBytes(5000)]), { alreadyCompressed: true });
    memory.tamper(artifactKey(dump), (content) => {
      content[10] = (content[10] ?? 0) ^ 0xff;
      return content;
    });
    await expect(readAll(await store.openArtifactReader(dump))).rejects.toMatchObject({
      type: FailureType.ChecksumMismatch,
      nonRetryable: true,
    });
    expect(await store.verifyArtifactChecksum(dump, record.sha256)).toMatchObject({
      exists: true,
      matches: false,
      bytes: record.bytes,
    });
    memory.tamper(artifactKey(dump), (content) => content.subarray(1));
    await expect(store.openArtifactReader(dump)).rejects.toMatchObject({
      type: FailureType.ChecksumMismatch,
      message: expect.stringContaining('truncated'),
    });
  });

  test('a source that fails midway leaves no artifact and no unfinished upload', async () => {
    const { store, blobs } = storeOn();
    const failing = failingSource('clickhouse closed the connection');
    await expect(writeArtifact(store, ref, failing, { alreadyCompressed: false })).rejects.toThrow(
      'clickhouse closed the connection',
    );
    expect(blobs.changes.at(-1)).toBe(`abort ${artifactKey(ref)}`);
    expect(await store.statArtifact(ref)).toEqual({ exists: false });
    expect(await store.removeTemporaryFiles(ref)).toEqual([]);
  });
});

describe('backups', () => {
  test('a backup is complete once its manifest is written, listed newest first, and deleted manifest first', async () => {
    const { store, blobs } = storeOn();
    for (const backupId of ['b_old', 'b_new']) {
      await writeArtifact(
        store,
        { orgId: 'org_a', backupId, path: 'postgres/schemas.dump' },
        Readable.from([randomBytes(100)]),
        { alreadyCompressed: true },
      );
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await store.writeJson({ orgId: 'org_a', backupId: 'b_new' }, 'manifest.json', { backupId: 'b_new' });
    await store.writeJson({ orgId: 'org_b', backupId: 'b1' }, 'hold.json', {});
    expect(
      (await store.listBackups('org_a')).map((b) => [b.backupId, b.complete, b.artifactCount, b.storedBytes]),
    ).toEqual([
      ['b_new', true, 1, 100],
      ['b_old', false, 1, 100],
    ]);
    expect(await store.listOrganizations()).toEqual(['org_a', 'org_b']);

    blobs.changes.length = 0;
    expect(await store.deleteBackup({ orgId: 'org_a', backupId: 'b_new' })).toEqual({ deleted: true });
    expect(blobs.changes).toEqual(['delete org_a/b_new/manifest.json', 'deletePrefix org_a/b_new/']);
    expect(await store.deleteBackup({ orgId: 'org_a', backupId: 'b_new' })).toEqual({ deleted: false });
    expect((await store.listBackups('org_a')).map((b) => b.backupId)).toEqual(['b_old']);
  });

  test('documents are read back as written, refused when corrupted, and the manifest is only removed with its backup', async () => {
    const { store, memory } = storeOn();
    const backup = { orgId: 'org_a', backupId: 'b1' };
    expect(await store.readJson(backup, 'verification.json')).toBeUndefined();
    await store.writeJson(backup, 'verification.json', { result: 'passed' });
    expect(await store.readJson(backup, 'verification.json')).toEqual({ result: 'passed' });
    expect((await readBlob(memory, 'org_a/b1/verification.json'))?.toString()).toBe('{\n  "result": "passed"\n}\n');
    await memory.put('org_a/b1/verification.json', '{"result": ');
    await expect(store.readJson(backup, 'verification.json')).rejects.toMatchObject({
      type: FailureType.ChecksumMismatch,
    });
    await expect(store.deleteJson(backup, 'manifest.json')).rejects.toThrow(/only with its whole backup/);
    expect(await store.deleteJson(backup, 'verification.json')).toEqual({ deleted: true });
  });
});
