import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import {
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutBucketVersioningCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { loadConfig, type AppConfig } from '../src/config';
import { keysKey } from '../src/storage/backup-layout';
import { BlobKeyStore } from '../src/storage/blob-key-store';
import { readBlob } from '../src/storage/blob-store';
import { writeArtifact } from '../src/storage/backup-store';
import { createBackupStore, createKeyStore } from '../src/storage/configured-backup-store';
import { masterKeyId } from '../src/storage/encryption';
import { createS3Client, S3Blobs } from '../src/storage/s3-blobs';
import { rejectionOf } from './support/failures';
import { REPO_ROOT } from './support/paths';
import { localS3Blobs, localS3Env, removeLocalS3Prefix } from './support/local-s3';
import { startScratchS3, type ScratchServer } from './support/scratch-servers';
import { uniqueOrgId } from './support/test-worker';

/**
 * The organizations' data keys in the bucket (BACKUP_STORE=s3), on the gofakes3 server of
 * `scripts/stack.sh up s3` and, for versioned buckets, on a gofakes3 of this file's own (the shared
 * one keeps objects in bolt, which knows no versions). Each "worker" below is a store made from
 * the configuration with its own S3 client and its own BACKUP_DIR, so nothing is shared but the bucket.
 */
const masterKey = randomBytes(32);
const env = localS3Env('s3-keys');
const backupDirs: string[] = [];
const run = promisify(execFile);

afterAll(async () => {
  await removeLocalS3Prefix(env);
  for (const dir of backupDirs) await rm(dir, { recursive: true, force: true });
});

/** The configuration of one worker: the shared bucket, the master key, a BACKUP_DIR of its own. */
async function workerConfig(extra: NodeJS.ProcessEnv = {}): Promise<AppConfig['backup']> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-s3-keys-dir-'));
  backupDirs.push(dir);
  return loadConfig({
    ...process.env,
    ...env,
    BACKUP_DIR: dir,
    BACKUP_MASTER_KEY: masterKey.toString('base64'),
    ...extra,
  }).backup;
}

describe('data keys in the bucket (BACKUP_STORE=s3)', () => {
  test('the server refuses a write whose If-None-Match or If-Match no longer holds (gofakes3 v1.2.0 honours both)', async () => {
    const blobs = localS3Blobs(env);
    const key = `${uniqueOrgId('cas')}/keys.json`;
    const context = { store: 'storage' as const, object: key };
    const first = await blobs.putIfUnchanged(key, 'one', undefined, context);
    expect(first).toMatch(/^"[0-9a-f]{32}"$/);
    expect(await blobs.putIfUnchanged(key, 'other', undefined, context)).toBeUndefined();
    const second = await blobs.putIfUnchanged(key, 'two', first, context);
    expect(second).toBeDefined();
    expect(await blobs.putIfUnchanged(key, 'stale', first, context)).toBeUndefined();
    expect((await blobs.getTagged(key))?.content.toString()).toBe('two');
  });

  test('workers creating the first key of an organization at once end with one key, the one each of them got', async () => {
    const orgId = uniqueOrgId('race');
    const config = await workerConfig();
    const workers = Array.from({ length: 6 }, () => createKeyStore(config, masterKey));
    const keys = await Promise.all(workers.map((worker) => worker.getOrCreateDataKey(orgId)));
    expect(new Set(keys.map((key) => key.keyId)).size).toBe(1);
    expect(new Set(keys.map((key) => key.key.toString('hex'))).size).toBe(1);
    expect(await localS3Blobs(env).list(`${orgId}/`)).toEqual([keysKey(orgId)]);
    const [first] = keys;
    const reread = await createKeyStore(config, masterKey).getDataKey(orgId, first?.keyId ?? '');
    expect(reread.key.equals(first?.key ?? Buffer.alloc(0))).toBe(true);
  });

  test('an artifact encrypted by one worker is read by another that shares no disk with it, and neither writes a key file to its BACKUP_DIR', async () => {
    const orgId = uniqueOrgId('share');
    const [configA, configB] = [await workerConfig(), await workerConfig()];
    const ref = { orgId, backupId: 'b1', path: 'postgres/shared/users.copy' };
    const rows = Buffer.from(`${orgId}\tada@example.com\n${orgId}\tgrace@example.com\n`);
    const record = await writeArtifact(createBackupStore(configA), ref, Readable.from([rows]), {
      alreadyCompressed: false,
    });
    expect(record).toMatchObject({ encrypted: true, keyId: expect.stringMatching(/^dk_/) });
    const stored = await readBlob(localS3Blobs(env), `${orgId}/b1/${ref.path}`);
    expect(stored?.includes(Buffer.from(orgId))).toBe(false);

    const reader = await createBackupStore(configB).openArtifactReader(ref);
    const chunks: Buffer[] = [];
    for await (const chunk of reader) chunks.push(chunk as Buffer);
    expect(Buffer.concat(chunks).equals(rows)).toBe(true);
    expect(await readdir(configA.directory)).toEqual([]);
    expect(await readdir(configB.directory)).toEqual([]);
    expect(await localS3Blobs(env).stat(keysKey(orgId))).toBeDefined();
  });

  test('shredding on a bucket without versions leaves only the tombstone, makes the artifact unreadable for every worker, and is idempotent', async () => {
    const orgId = uniqueOrgId('shred');
    const [configA, configB] = [await workerConfig(), await workerConfig()];
    const ref = { orgId, backupId: 'b1', path: 'clickhouse/events.native' };
    await writeArtifact(createBackupStore(configA), ref, Readable.from([Buffer.from('rows\n')]), {
      alreadyCompressed: false,
    });
    const { keyId } = await createKeyStore(configA, masterKey).getOrCreateDataKey(orgId);

    // The worker that shreds has no master key configured, as in src/worker.ts.
    expect(await createKeyStore(configB, undefined).destroyDataKey(orgId)).toEqual({ destroyedKeyIds: [keyId] });
    const tombstone = JSON.parse((await readBlob(localS3Blobs(env), keysKey(orgId)))?.toString() ?? '{}') as unknown;
    expect(tombstone).toMatchObject({ dataKey: null, destroyed: [{ keyId }] });
    const refused = await rejectionOf(createBackupStore(configA).openArtifactReader(ref));
    expect((refused as Error).message).toMatch(new RegExp(`data key ${keyId} was destroyed \\(crypto-shredded\\)`));
    expect(await createKeyStore(configA, undefined).destroyDataKey(orgId)).toEqual({ destroyedKeyIds: [] });

    // A later backup of the same organization id gets a new key; the tombstone stays.
    const next = await createKeyStore(configA, masterKey).getOrCreateDataKey(orgId);
    expect(next.keyId).not.toBe(keyId);
    expect(await createKeyStore(configB, masterKey).describe(orgId)).toEqual({
      keyId: next.keyId,
      masterKeyId: masterKeyId(masterKey),
      destroyed: [keyId],
    });
  });
});

test('npm run keys -- rotate and status work on the keys in the bucket, with no BACKUP_DIR of the worker', async () => {
  // A prefix of its own: rotation re-wraps every organization's key under the prefix.
  const cliEnv = localS3Env('s3-keys-cli');
  const orgId = uniqueOrgId('cli');
  const newMasterKey = randomBytes(32);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-s3-keys-cli-'));
  backupDirs.push(dir);
  const processEnv = { ...process.env, ...cliEnv, BACKUP_DIR: dir, BACKUP_MASTER_KEY: masterKey.toString('base64') };
  const keysCommand = (...args: string[]) =>
    run(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'scripts', 'keys.ts'), ...args], {
      cwd: REPO_ROOT,
      env: { ...processEnv, NEW_BACKUP_MASTER_KEY: newMasterKey.toString('base64') },
    });
  try {
    const { keyId } = await createKeyStore(loadConfig(processEnv).backup, masterKey).getOrCreateDataKey(orgId);
    await keysCommand('rotate');
    const status = JSON.parse((await keysCommand('status')).stdout) as unknown;
    expect(status).toMatchObject({
      bucket: loadConfig(processEnv).backup.s3.bucket,
      organizations: [{ orgId, keyId, masterKeyId: masterKeyId(newMasterKey), destroyed: [] }],
    });
    expect(await readdir(dir)).toEqual([]);
  } finally {
    await removeLocalS3Prefix(cliEnv);
  }
});

describe('data keys in a versioned bucket', () => {
  const bucket = 'eloquent-versioned';
  let server: ScratchServer;
  let client: S3Client;

  beforeAll(async () => {
    server = await startScratchS3(bucket);
    client = createS3Client({
      endpoint: server.url,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
    });
    await client.send(
      new PutBucketVersioningCommand({ Bucket: bucket, VersioningConfiguration: { Status: 'Enabled' } }),
    );
  });
  afterAll(async () => {
    client?.destroy();
    await server?.stop();
  });

  const blobsOf = (prefix: string) => new S3Blobs({ client, bucket, prefix });
  const versionsOf = async (objectKey: string) => {
    const answer = await client.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: objectKey }));
    return {
      versions: (answer.Versions ?? []).filter((v) => v.Key === objectKey).map((v) => v.VersionId ?? ''),
      deleteMarkers: (answer.DeleteMarkers ?? []).filter((m) => m.Key === objectKey).length,
    };
  };

  test('shredding deletes every earlier version of the keys object and every delete marker, and only the tombstone remains', async () => {
    const orgId = uniqueOrgId('vshred');
    const blobs = blobsOf('shred/');
    const store = new BlobKeyStore({ blobs, masterKey });
    const { keyId } = await store.getOrCreateDataKey(orgId);
    // Earlier copies of the wrapped key: an operator's re-upload, a delete and a restore of the object.
    const document = (await readBlob(blobs, keysKey(orgId))) ?? Buffer.alloc(0);
    await blobs.put(keysKey(orgId), document, { store: 'storage' });
    await blobs.delete(keysKey(orgId), { store: 'storage' });
    await blobs.put(keysKey(orgId), document, { store: 'storage' });
    const objectKey = `shred/${keysKey(orgId)}`;
    const before = await versionsOf(objectKey);
    expect(before).toEqual({
      versions: [expect.any(String), expect.any(String), expect.any(String)],
      deleteMarkers: 1,
    });

    expect(await new BlobKeyStore({ blobs, masterKey: undefined }).destroyDataKey(orgId)).toEqual({
      destroyedKeyIds: [keyId],
    });
    const after = await versionsOf(objectKey);
    expect(after).toEqual({ versions: [expect.any(String)], deleteMarkers: 0 });
    expect(before.versions).not.toContain(after.versions[0]);
    for (const versionId of before.versions) {
      await expect(
        client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey, VersionId: versionId })),
      ).rejects.toThrow();
    }
    const tombstone = JSON.parse((await readBlob(blobs, keysKey(orgId)))?.toString() ?? '{}') as unknown;
    expect(tombstone).toMatchObject({ dataKey: null, destroyed: [{ keyId }] });
    await expect(store.getDataKey(orgId, keyId)).rejects.toThrow(/was destroyed \(crypto-shredded\)/);
  });

  test('rotation re-wraps every key under the new master key, removes the versions wrapped under the old one, and a rerun finishes an interrupted one', async () => {
    const newMasterKey = randomBytes(32);
    const blobs = blobsOf('rotate/');
    const [orgA, orgB, orgLate] = [uniqueOrgId('rota'), uniqueOrgId('rotb'), uniqueOrgId('rotc')];
    const oldStore = new BlobKeyStore({ blobs, masterKey });
    const keyA = await oldStore.getOrCreateDataKey(orgA);
    await oldStore.getOrCreateDataKey(orgB);

    const first = await oldStore.rotateMasterKey(masterKey, newMasterKey);
    expect(first).toEqual({
      fromMasterKeyId: masterKeyId(masterKey),
      toMasterKeyId: masterKeyId(newMasterKey),
      rewrapped: [orgA, orgB].sort(),
      alreadyRotated: [],
    });
    for (const orgId of [orgA, orgB]) expect((await versionsOf(`rotate/${keysKey(orgId)}`)).versions).toHaveLength(1);
    const newStore = new BlobKeyStore({ blobs, masterKey: newMasterKey });
    expect((await newStore.getDataKey(orgA, keyA.keyId)).key.equals(keyA.key)).toBe(true);
    await expect(oldStore.getDataKey(orgA, keyA.keyId)).rejects.toThrow(/master key/);

    // A worker still on the old key created one more key before the rotation was run again.
    await oldStore.getOrCreateDataKey(orgLate);
    const rerun = await oldStore.rotateMasterKey(masterKey, newMasterKey);
    expect(rerun).toMatchObject({ rewrapped: [orgLate], alreadyRotated: [orgA, orgB].sort() });
    expect(await newStore.describe(orgLate)).toMatchObject({ masterKeyId: masterKeyId(newMasterKey) });
    expect((await versionsOf(`rotate/${keysKey(orgLate)}`)).versions).toHaveLength(1);
  });
});
