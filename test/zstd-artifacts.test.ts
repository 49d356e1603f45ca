import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../src/errors';
import { writeArtifact, type ArtifactRef } from '../src/storage/backup-store';
import { FilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { FileKeyStore } from '../src/storage/key-store';

/** zstd's frame magic number, little-endian: what `file` recognizes a .zst by. */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

let root: string;
let counter = 0;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'eloquent-zstd-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const storeWith = (masterKey: Buffer | undefined) =>
  new FilesystemBackupStore({ directory: root, keyStore: new FileKeyStore({ directory: root, masterKey }) });

function freshRef(): ArtifactRef {
  counter += 1;
  return { orgId: `org_z${counter}_${randomBytes(3).toString('hex')}`, backupId: 'b1', path: 'postgres/schemas.dump' };
}

/** About `mebibytes` of dump-like text with incompressible stretches, fed in uneven pieces. */
function dumpLike(mebibytes: number): Buffer {
  const parts: Buffer[] = [];
  let size = 0;
  for (let line = 0; size < mebibytes * 1024 * 1024; line++) {
    const part =
      line % 300 === 0 ? randomBytes(700) : Buffer.from(`${line}\tentity ${line * 7919}\tsome repeated text\n`);
    parts.push(part);
    size += part.length;
  }
  return Buffer.concat(parts);
}

function pieces(data: Buffer): Readable {
  const out: Buffer[] = [];
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const size = [1, 9_000, 65_536, 250_001][i % 4] ?? 1;
    out.push(data.subarray(offset, offset + size));
    offset += size;
  }
  return Readable.from(out);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const fileOf = (ref: ArtifactRef) => path.join(root, ref.orgId, ref.backupId, ...ref.path.split('/'));

describe('artifacts compressed with zstd (the uncompressed pg_dump archive of issue 17)', () => {
  test('are stored as one zstd frame, recorded as zstd, much smaller, and read back byte for byte', async () => {
    const store = storeWith(undefined);
    const ref = freshRef();
    const data = dumpLike(8);
    const record = await writeArtifact(store, ref, pieces(data), { alreadyCompressed: false, compressWith: 'zstd' });
    expect(record).toMatchObject({ compression: 'zstd', encrypted: false, rawBytes: data.length });
    expect(record.bytes).toBeLessThan(data.length / 3);
    const stored = await readFile(fileOf(ref));
    expect(stored.subarray(0, 4)).toEqual(ZSTD_MAGIC);
    expect(record.sha256).toBe(createHash('sha256').update(stored).digest('hex'));
    expect(await store.statArtifact(ref)).toMatchObject({ exists: true, compression: 'zstd' });
    expect((await readAll(await store.openArtifactReader(ref))).equals(data)).toBe(true);
  });

  test('are compressed before they are encrypted, and decrypt and decompress back to the original', async () => {
    const store = storeWith(randomBytes(32));
    const ref = freshRef();
    const data = dumpLike(3);
    const record = await writeArtifact(store, ref, pieces(data), { alreadyCompressed: false, compressWith: 'zstd' });
    expect(record).toMatchObject({ compression: 'zstd', encrypted: true });
    expect(record.bytes).toBeLessThan(data.length / 3);
    const stored = await readFile(fileOf(ref));
    expect(stored.subarray(0, 6).toString('ascii')).toBe('ELQENC');
    expect((await readAll(await store.openArtifactReader(ref))).equals(data)).toBe(true);
  });

  test('a reader that stops early (pg_restore --list reads only the head) ends the zstd process cleanly', async () => {
    const store = storeWith(undefined);
    const ref = freshRef();
    const data = dumpLike(6);
    await writeArtifact(store, ref, pieces(data), { alreadyCompressed: false, compressWith: 'zstd' });
    const reader = await store.openArtifactReader(ref);
    const head: Buffer[] = [];
    for await (const chunk of reader) {
      head.push(chunk as Buffer);
      break;
    }
    expect(Buffer.concat(head).equals(data.subarray(0, Buffer.concat(head).length))).toBe(true);
    // The same artifact opens again at once: nothing was left half-read or locked.
    expect((await readAll(await store.openArtifactReader(ref))).equals(data)).toBe(true);
  });

  test('bytes that are not zstd, with a sidecar rewritten to match, fail with ChecksumMismatch naming the artifact', async () => {
    const store = storeWith(undefined);
    const ref = freshRef();
    await writeArtifact(store, ref, pieces(dumpLike(1)), { alreadyCompressed: false, compressWith: 'zstd' });
    const forged = Buffer.from('PGDMP this was never zstd '.repeat(1000));
    await writeFile(fileOf(ref), forged);
    const sidecarPath = `${fileOf(ref)}.meta.json`;
    const sidecar = JSON.parse(await readFile(sidecarPath, 'utf8')) as Record<string, unknown>;
    await writeFile(
      sidecarPath,
      JSON.stringify({ ...sidecar, bytes: forged.length, sha256: createHash('sha256').update(forged).digest('hex') }),
    );
    let caught: unknown;
    try {
      await readAll(await store.openArtifactReader(ref));
    } catch (err: unknown) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ApplicationFailure);
    expect((caught as ApplicationFailure).type).toBe(FailureType.ChecksumMismatch);
    expect((caught as ApplicationFailure).message).toContain(`${ref.orgId}/b1/postgres/schemas.dump`);
    expect((caught as ApplicationFailure).message).toContain('zstd');
  });
});
