import type { AppConfig } from '../config';
import { BlobBackupStore } from './blob-backup-store';
import { parseMasterKey } from './encryption';
import { configuredAuthenticator, createFilesystemBackupStore } from './filesystem-backup-store';
import { FileKeyStore } from './key-store';
import { createS3Client, S3Blobs } from './s3-blobs';

/**
 * The backup store that `BACKUP_STORE` names: the filesystem store at `BACKUP_DIR`, or the shared
 * store (blob-backup-store.ts) on an S3-compatible bucket, `s3://S3_BUCKET/S3_PREFIX<org>/<backup>/…`
 * with the same layout, sidecars and commit protocol. Call it once per process: it builds the S3 client.
 *
 * Keys (`<org>/keys.json`) stay in {@link FileKeyStore} under `BACKUP_DIR` with either store, for
 * now: changing a key file needs a lock across workers, which the filesystem gives (a lock
 * directory) and S3 needs conditional writes with ETags for. With encryption on and the S3 store,
 * back up `BACKUP_DIR` too (or mount it from a shared volume): the artifacts are unreadable without it.
 * @throws ApplicationFailure `InvalidInput` when the master key is not base64 of 32 bytes.
 */
export function createBackupStore(backup: AppConfig['backup'], gzipLevel?: number): BlobBackupStore {
  if (backup.store === 'filesystem') return createFilesystemBackupStore(backup, gzipLevel);
  const masterKey =
    backup.masterKeyBase64 === undefined ? undefined : parseMasterKey(backup.masterKeyBase64, 'BACKUP_MASTER_KEY');
  const { s3 } = backup;
  const client = createS3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: s3.forcePathStyle,
    credentials: s3.credentials,
  });
  const blobs = new S3Blobs({
    client,
    bucket: s3.bucket,
    prefix: s3.prefix,
    partBytes: s3.partBytes,
    conditionalPuts: s3.conditionalPuts,
  });
  const keyStore = new FileKeyStore({ directory: backup.directory, masterKey });
  return new BlobBackupStore({
    blobs,
    keyStore,
    authenticator: configuredAuthenticator(keyStore, backup),
    ...(gzipLevel === undefined ? {} : { gzipLevel }),
  });
}
