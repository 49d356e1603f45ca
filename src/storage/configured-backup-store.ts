import type { AppConfig } from '../config';
import { BlobBackupStore } from './blob-backup-store';
import { BlobKeyStore } from './blob-key-store';
import { parseMasterKey } from './encryption';
import { configuredAuthenticator, createFilesystemBackupStore } from './filesystem-backup-store';
import { FileKeyStore, type KeyInventory, type KeyStore } from './key-store';
import { createS3Client, S3Blobs } from './s3-blobs';

/**
 * The backup store that `BACKUP_STORE` names: the filesystem store at `BACKUP_DIR`, or the shared
 * store (blob-backup-store.ts) on an S3-compatible bucket, `s3://S3_BUCKET/S3_PREFIX<org>/<backup>/…`
 * with the same layout, sidecars and commit protocol. Call it once per process: it builds the S3 client.
 *
 * Keys (`<org>/keys.json`) live beside the backups of the same store: {@link FileKeyStore} under
 * `BACKUP_DIR`, or {@link BlobKeyStore} in the bucket, where every worker reads the same keys and
 * changes them with conditional writes (no lock, no shared volume).
 * @throws ApplicationFailure `InvalidInput` when the master key is not base64 of 32 bytes.
 */
export function createBackupStore(backup: AppConfig['backup'], gzipLevel?: number): BlobBackupStore {
  if (backup.store === 'filesystem') return createFilesystemBackupStore(backup, gzipLevel);
  const masterKey =
    backup.masterKeyBase64 === undefined ? undefined : parseMasterKey(backup.masterKeyBase64, 'BACKUP_MASTER_KEY');
  const blobs = createConfiguredS3Blobs(backup.s3);
  const keyStore = new BlobKeyStore({ blobs, masterKey });
  return new BlobBackupStore({
    blobs,
    keyStore,
    authenticator: configuredAuthenticator(keyStore, backup),
    ...(gzipLevel === undefined ? {} : { gzipLevel }),
  });
}

/**
 * The key store of the store `BACKUP_STORE` names, on its own: for crypto-shredding in the worker
 * (which needs no master key, `masterKey` undefined) and for `npm run keys`. With `s3` it builds
 * an S3 client of its own.
 */
export function createKeyStore(backup: AppConfig['backup'], masterKey: Buffer | undefined): KeyStore & KeyInventory {
  if (backup.store === 'filesystem') return new FileKeyStore({ directory: backup.directory, masterKey });
  return new BlobKeyStore({ blobs: createConfiguredS3Blobs(backup.s3), masterKey });
}

function createConfiguredS3Blobs(s3: AppConfig['backup']['s3']): S3Blobs {
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.credentials,
  });
  return new S3Blobs({
    client,
    bucket: s3.bucket,
    prefix: s3.prefix,
    partBytes: s3.partBytes,
    conditionalPuts: s3.conditionalPuts,
  });
}
