import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { readBlob, type BlobStore } from '../src/storage/blob-store';
import { FilesystemBlobs } from '../src/storage/filesystem-blobs';
import { InMemoryBlobs } from '../src/storage/in-memory-blobs';
import { failingSource } from './support/failing-source';
import { localS3Blobs, localS3Env, removeLocalS3Prefix } from './support/local-s3';

/**
 * The contract every blob backend keeps, run against each one. A new backend (S3-compatible) is
 * added to this list, and passes it, before the backup store runs on it.
 */
const context = { store: 'storage' as const, orgId: 'org_a', object: 'contract' };
const roots: string[] = [];
const s3Prefixes: NodeJS.ProcessEnv[] = [];

afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
  for (const env of s3Prefixes) await removeLocalS3Prefix(env);
});

const backends: Array<[string, () => Promise<BlobStore>]> = [
  ['in memory', async () => new InMemoryBlobs()],
  [
    'on the filesystem',
    async () => {
      const root = await mkdtemp(path.join(os.tmpdir(), 'eloquent-blobs-'));
      roots.push(root);
      return new FilesystemBlobs(root);
    },
  ],
  [
    // The server `scripts/stack.sh up s3` starts; each test gets a prefix of its own.
    'on an S3-compatible server',
    async () => {
      const env = localS3Env('blobs');
      s3Prefixes.push(env);
      return localS3Blobs(env);
    },
  ],
];

async function upload(blobs: BlobStore, key: string, content: string): Promise<void> {
  const writer = await blobs.create(key, context);
  await pipeline(Readable.from([Buffer.from(content)]), writer.stream);
  await writer.commit();
}

describe.each(backends)('blobs %s', (_name, make) => {
  test('an upload is invisible until its commit, and the previous blob stays readable until then', async () => {
    const blobs = await make();
    await upload(blobs, 'org_a/b1/postgres/schemas.dump', 'old');
    const writer = await blobs.create('org_a/b1/postgres/schemas.dump', context);
    await pipeline(Readable.from([Buffer.from('new and longer')]), writer.stream);
    expect((await readBlob(blobs, 'org_a/b1/postgres/schemas.dump'))?.toString()).toBe('old');
    expect(await blobs.list('org_a/')).toEqual(['org_a/b1/postgres/schemas.dump']);
    expect(await blobs.listUnfinished('org_a/')).toHaveLength(1);
    await writer.commit();
    expect((await readBlob(blobs, 'org_a/b1/postgres/schemas.dump'))?.toString()).toBe('new and longer');
    expect(await blobs.stat('org_a/b1/postgres/schemas.dump')).toMatchObject({ bytes: 14 });
    expect(await blobs.listUnfinished('org_a/')).toEqual([]);
  });

  test('an aborted upload leaves nothing, and an abandoned one is listed as unfinished until deleted', async () => {
    const blobs = await make();
    const aborted = await blobs.create('org_a/b1/clickhouse/t.native', context);
    aborted.stream.write(Buffer.from('partial'));
    await aborted.abort();
    const abandoned = await blobs.create('org_a/b1/clickhouse/u.native', context);
    await new Promise<void>((resolve) => abandoned.stream.write(Buffer.from('partial'), () => resolve()));
    expect(await blobs.list('org_a/')).toEqual([]);
    const [unfinished, ...more] = await blobs.listUnfinished('org_a/b1/');
    expect(more).toEqual([]);
    expect(unfinished?.startsWith('org_a/b1/clickhouse/')).toBe(true);
    expect(await blobs.delete(unfinished ?? '', context)).toBe(true);
    expect(await blobs.listUnfinished('org_a/')).toEqual([]);
    await abandoned.abort();
  });

  test('a stream that fails leaves its upload uncommittable and nothing under the key', async () => {
    const blobs = await make();
    const writer = await blobs.create('org_a/b1/postgres/schemas.dump', context);
    const failing = failingSource('pg_dump exited with code 1');
    await expect(pipeline(failing, writer.stream)).rejects.toThrow('pg_dump exited with code 1');
    await expect(writer.commit()).rejects.toThrow();
    await writer.abort();
    expect(await blobs.stat('org_a/b1/postgres/schemas.dump')).toBeUndefined();
    expect(await blobs.listUnfinished('org_a/')).toEqual([]);
  });

  test('put replaces whole, putIfAbsent writes only the first time, and absence is an answer, not an error', async () => {
    const blobs = await make();
    await blobs.put('org_a/b1/manifest.json', '{"v":1}', context);
    await blobs.put('org_a/b1/manifest.json', '{"v":2}', context);
    expect((await readBlob(blobs, 'org_a/b1/manifest.json'))?.toString()).toBe('{"v":2}');
    expect(await blobs.putIfAbsent('org_a/b1/.backup.json', 'first', context)).toBe(true);
    expect(await blobs.putIfAbsent('org_a/b1/.backup.json', 'second', context)).toBe(false);
    expect((await readBlob(blobs, 'org_a/b1/.backup.json'))?.toString()).toBe('first');
    expect(await blobs.get('org_a/b1/none.json')).toBeUndefined();
    expect(await blobs.stat('org_a/b1/none.json')).toBeUndefined();
    expect(await blobs.delete('org_a/b1/none.json', context)).toBe(false);
    expect(await blobs.list('org_never/')).toEqual([]);
    expect(await blobs.listPrefixes('org_never/')).toEqual([]);
  });

  test('list is recursive and sorted, listPrefixes gives the next level only', async () => {
    const blobs = await make();
    for (const key of [
      'org_b/b2/manifest.json',
      'org_a/keys.json',
      'org_a/b1/postgres/shared/public.users.copy',
      'org_a/b1/.backup.json',
      'org_a/b2/x/y.native',
    ]) {
      await blobs.put(key, 'x', context);
    }
    expect(await blobs.list('org_a/b1/')).toEqual([
      'org_a/b1/.backup.json',
      'org_a/b1/postgres/shared/public.users.copy',
    ]);
    expect(await blobs.listPrefixes('')).toEqual(['org_a', 'org_b']);
    expect(await blobs.listPrefixes('org_a/')).toEqual(['b1', 'b2']);
  });

  test('deletePrefix removes everything under the prefix and nothing beside it, and is idempotent', async () => {
    const blobs = await make();
    for (const key of [
      'org_a/b1/manifest.json',
      'org_a/b1/postgres/schemas.dump',
      'org_a/b10/manifest.json',
      'org_a/keys.json',
    ])
      await blobs.put(key, 'x', context);
    const unfinished = await blobs.create('org_a/b1/clickhouse/t.native', context);
    await new Promise<void>((resolve) => unfinished.stream.write(Buffer.from('partial'), () => resolve()));
    expect(await blobs.deletePrefix('org_a/b1/', context)).toBe(true);
    expect(await blobs.deletePrefix('org_a/b1/', context)).toBe(false);
    expect(await blobs.list('org_a/')).toEqual(['org_a/b10/manifest.json', 'org_a/keys.json']);
    expect(await blobs.listUnfinished('org_a/')).toEqual([]);
    await unfinished.abort();
    await expect(blobs.deletePrefix('', context)).rejects.toThrow(/every blob/);
  });

  test('a blob of several multipart parts streams in and reads back byte for byte', async () => {
    const blobs = await make();
    // 8 MiB parts on S3: three parts, the last one short; chunks that straddle part boundaries.
    const content = randomBytes(17 * 1024 * 1024 + 123);
    const writer = await blobs.create('org_a/b1/clickhouse/big.native', context);
    const chunks = Array.from({ length: Math.ceil(content.length / 300_001) }, (_, i) =>
      content.subarray(i * 300_001, (i + 1) * 300_001),
    );
    await pipeline(Readable.from(chunks), writer.stream);
    await writer.commit();
    expect(await blobs.stat('org_a/b1/clickhouse/big.native')).toMatchObject({ bytes: content.length });
    const read = createHash('sha256');
    for await (const chunk of (await blobs.get('org_a/b1/clickhouse/big.native')) ?? []) read.update(chunk as Buffer);
    expect(read.digest('hex')).toBe(createHash('sha256').update(content).digest('hex'));
    await upload(blobs, 'org_a/b1/empty.copy', '');
    expect(await blobs.stat('org_a/b1/empty.copy')).toMatchObject({ bytes: 0 });
    expect(await blobs.listUnfinished('org_a/')).toEqual([]);
  });

  test('keys that could leave the store are refused', async () => {
    const blobs = await make();
    for (const key of ['../x', 'org_a/../../x', '/etc/passwd', 'org_a//x', 'org_a/./x', 'org_a\\x']) {
      await expect(blobs.put(key, 'x', context)).rejects.toThrow(/segment|backslash/);
    }
    await expect(blobs.list('org_a')).rejects.toThrow(/must end with/);
  });
});
