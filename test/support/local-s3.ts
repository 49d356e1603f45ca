import { randomUUID } from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { loadConfig } from '../../src/config';
import { createS3Client, S3Blobs } from '../../src/storage/s3-blobs';

/**
 * The environment of a worker whose backups go to the local S3-compatible server that
 * `scripts/stack.sh up s3` starts (gofakes3, which accepts any credentials), each test file under
 * a prefix of its own so files never see each other's objects.
 */
export function localS3Env(name: string): NodeJS.ProcessEnv {
  return {
    BACKUP_STORE: 's3',
    S3_ENDPOINT: process.env.S3_ENDPOINT ?? 'http://127.0.0.1:9510',
    S3_BUCKET: process.env.S3_BUCKET ?? 'eloquent-backups',
    S3_PREFIX: `test-${name}-${randomUUID().slice(0, 8)}/`,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'eloquent-local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'eloquent-local',
  };
}

/** Blobs on the local S3 server under `env`'s prefix, built from the configuration like the worker's. */
export function localS3Blobs(env: NodeJS.ProcessEnv): S3Blobs {
  const { s3 } = loadConfig({ ...process.env, ...env }).backup;
  return new S3Blobs({ client: createS3Client(s3), bucket: s3.bucket, prefix: s3.prefix, partBytes: s3.partBytes });
}

/** Removes everything a test wrote under `env`'s prefix. */
export async function removeLocalS3Prefix(env: NodeJS.ProcessEnv): Promise<void> {
  const { s3 } = loadConfig({ ...process.env, ...env }).backup;
  await new S3Blobs({ client: createS3Client(s3), bucket: s3.bucket }).deletePrefix(s3.prefix, {
    store: 'storage',
    object: s3.prefix,
  });
}

/** One object of the bucket as ListObjectsV2 answers, its key relative to the test's prefix. */
export interface LocalS3Object {
  key: string;
  bytes: number;
  lastModified: Date;
}

/**
 * Every object under `under` (relative to `env`'s prefix) as the S3 API lists it, sorted by key:
 * what the bucket holds, read around the store under test.
 */
export async function listLocalS3Objects(env: NodeJS.ProcessEnv, under: string): Promise<LocalS3Object[]> {
  const { s3 } = loadConfig({ ...process.env, ...env }).backup;
  const client = createS3Client(s3);
  const objects: LocalS3Object[] = [];
  try {
    let token: string | undefined;
    do {
      const page = await client.send(
        new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${s3.prefix}${under}`, ContinuationToken: token }),
      );
      for (const object of page.Contents ?? []) {
        if (object.Key === undefined) continue;
        objects.push({
          key: object.Key.slice(s3.prefix.length),
          bytes: object.Size ?? 0,
          lastModified: object.LastModified ?? new Date(0),
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  } finally {
    client.destroy();
  }
  return objects.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}
