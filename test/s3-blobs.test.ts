import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import { loadConfig } from '../src/config';
import { FailureType, isTransientNetworkError } from '../src/errors';
import { writeArtifact } from '../src/storage/backup-store';
import { BlobBackupStore } from '../src/storage/blob-backup-store';
import { FileKeyStore } from '../src/storage/key-store';
import { createS3Client, S3Blobs } from '../src/storage/s3-blobs';
import { rejectionOf } from './support/failures';
import { localS3Blobs, localS3Env, removeLocalS3Prefix } from './support/local-s3';

/**
 * What only the S3 blobs have to get right, on the server `scripts/stack.sh up s3` starts: pages of
 * listings and batch deletes, which errors are retried, and put-if-absent without conditional PUTs.
 * The behaviour every backend shares is in blob-store-contract.test.ts.
 */
const context = { store: 'storage' as const, orgId: 'org_a', object: 'org_a/b1/manifest.json' };
const env = localS3Env('s3-blobs');
const settings = loadConfig({ ...process.env, ...env }).backup.s3;

afterAll(() => removeLocalS3Prefix(env));

describe('S3 blobs', () => {
  test('listing and deleting more than one page of keys (1000) sees and removes every one', async () => {
    const blobs = localS3Blobs(env);
    const keys = Array.from({ length: 1203 }, (_, i) => `org_p/b1/clickhouse/t${String(i).padStart(4, '0')}.native`);
    for (let start = 0; start < keys.length; start += 50)
      await Promise.all(keys.slice(start, start + 50).map((key) => blobs.put(key, 'x', context)));
    await blobs.put('org_p/b2/manifest.json', '{}', context);
    expect(await blobs.list('org_p/b1/')).toEqual(keys);
    expect(await blobs.listPrefixes('org_p/')).toEqual(['b1', 'b2']);
    expect(await blobs.deletePrefix('org_p/b1/', context)).toBe(true);
    expect(await blobs.list('org_p/')).toEqual(['org_p/b2/manifest.json']);
  });

  test('a missing bucket is a permanent failure naming the object; a server that is down is retried', async () => {
    const wrongBucket = new S3Blobs({ client: createS3Client(settings), bucket: 'no-such-bucket-for-eloquent' });
    const missing = await rejectionOf(wrongBucket.put('org_a/b1/manifest.json', '{}', context));
    expect(missing).toBeInstanceOf(ApplicationFailure);
    expect(missing).toMatchObject({ type: FailureType.StoreRejected, nonRetryable: true });
    expect((missing as Error).message).toMatch(/\[storage org=org_a object=org_a\/b1\/manifest.json\].*NoSuchBucket/);

    const down = new S3Blobs({
      client: createS3Client({ ...settings, endpoint: 'http://127.0.0.1:1' }),
      bucket: settings.bucket,
    });
    const refused = await rejectionOf(down.stat('org_a/b1/manifest.json'));
    expect(refused).not.toBeInstanceOf(ApplicationFailure);
    expect(isTransientNetworkError(refused)).toBe(true);
  });

  test('without conditional PUTs, putIfAbsent checks first and still writes only once', async () => {
    const blobs = new S3Blobs({
      client: createS3Client(settings),
      bucket: settings.bucket,
      prefix: settings.prefix,
      conditionalPuts: false,
    });
    expect(await blobs.putIfAbsent('org_c/b1/.backup.json', 'first', context)).toBe(true);
    expect(await blobs.putIfAbsent('org_c/b1/.backup.json', 'second', context)).toBe(false);
    expect((await blobs.stat('org_c/b1/.backup.json'))?.bytes).toBe(5);
  });

  test("an artifact upload a crashed worker left shows as its backup's temporary file, the cleanup aborts it, and a retry writes it whole", async () => {
    const keysDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-s3-keys-'));
    try {
      const storeOnS3 = () =>
        new BlobBackupStore({
          blobs: localS3Blobs(env),
          keyStore: new FileKeyStore({ directory: keysDir, masterKey: undefined }),
        });
      const ref = { orgId: 'org_crash', backupId: 'b1', path: 'clickhouse/t.native' };
      const crashed = await storeOnS3().openArtifactWriter(ref, { alreadyCompressed: false });
      await new Promise<void>((resolve) =>
        crashed.stream.write(Buffer.from('rows that never finished\n'), () => resolve()),
      );
      // The worker dies here: no commit, no abort. The next attempt runs in a new process.
      const store = storeOnS3();
      expect((await store.listBackups('org_crash'))[0]).toMatchObject({
        backupId: 'b1',
        complete: false,
        artifactCount: 0,
        temporaryFiles: 1,
      });
      const removed = await store.removeTemporaryFiles(ref);
      expect(removed).toEqual([expect.stringMatching(/^clickhouse\/t\.native#upload-.+/)]);
      expect(await localS3Blobs(env).listUnfinished('org_crash/')).toEqual([]);
      const record = await writeArtifact(store, ref, Readable.from([Buffer.from('every row\n')]), {
        alreadyCompressed: false,
      });
      expect(await store.statArtifact(ref)).toMatchObject({ exists: true, sha256: record.sha256 });
    } finally {
      await rm(keysDir, { recursive: true, force: true });
    }
  });

  test('a part the server refuses (its upload was aborted meanwhile) fails the stream and the commit, and nothing appears', async () => {
    const blobs = localS3Blobs(env);
    const writer = await blobs.create('org_d/b1/clickhouse/t.native', context);
    const [unfinished] = await blobs.listUnfinished('org_d/');
    // A lifecycle rule or an operator aborts the upload while the worker is still writing.
    expect(await blobs.delete(unfinished ?? '', context)).toBe(true);
    const chunks = Array.from({ length: 20 }, () => Buffer.alloc(1024 * 1024, 1));
    await expect(pipeline(Readable.from(chunks), writer.stream)).rejects.toThrow(/NoSuchUpload|upload/i);
    await expect(writer.commit()).rejects.toThrow();
    await writer.abort();
    expect(await blobs.stat('org_d/b1/clickhouse/t.native')).toBeUndefined();
    expect(await blobs.listUnfinished('org_d/')).toEqual([]);
  });

  test("a part size below S3's 5 MiB is refused when the blobs are made", () => {
    expect(() => new S3Blobs({ client: createS3Client(settings), bucket: settings.bucket, partBytes: 1024 })).toThrow(
      /at least 5242880/,
    );
  });
});
