import { BackupAuthenticator } from './backup-authentication';
import { BlobBackupStore } from './blob-backup-store';
import { parseMasterKey } from './encryption';
import { FilesystemBlobs } from './filesystem-blobs';
import { FileKeyStore, type KeyStore } from './key-store';

export interface FilesystemBackupStoreOptions {
  /** Root directory; created on first write. */
  directory: string;
  /** Wraps and holds the organizations' data keys; encryption is on when it has a master key. */
  keyStore: KeyStore;
  /** gzip level 1-9 for formats that are not compressed already. @default 1 (fastest: backups race the raw tools) */
  gzipLevel?: number;
  /** Signs and checks manifests and sidecars; @default one on `keyStore` alone. */
  authenticator?: BackupAuthenticator;
}

/**
 * The backup store on a local or mounted filesystem: the shared store (blob-backup-store.ts) on
 * {@link FilesystemBlobs}, so `<directory>/<org>/<backup>/<path>` holds an artifact's stored bytes,
 * `<path>.meta.json` beside it its sidecar (backup-layout.ts has every name).
 */
export class FilesystemBackupStore extends BlobBackupStore {
  constructor(options: FilesystemBackupStoreOptions) {
    super({
      blobs: new FilesystemBlobs(options.directory),
      keyStore: options.keyStore,
      ...(options.gzipLevel === undefined ? {} : { gzipLevel: options.gzipLevel }),
      ...(options.authenticator === undefined ? {} : { authenticator: options.authenticator }),
    });
  }
}

/**
 * The filesystem backup store of the configuration: `config.backup.directory`, with encryption when
 * `config.backup.masterKeyBase64` is set. Keys live in `<directory>/<orgId>/keys.json` (see key-store.ts).
 * @throws ApplicationFailure `InvalidInput` when the master key is not base64 of 32 bytes.
 */
export function createFilesystemBackupStore(
  backup: {
    directory: string;
    masterKeyBase64: string | undefined;
    authenticationSecretBase64?: string | undefined;
    acceptUnauthenticated?: boolean;
  },
  gzipLevel?: number,
): FilesystemBackupStore {
  const masterKey =
    backup.masterKeyBase64 === undefined ? undefined : parseMasterKey(backup.masterKeyBase64, 'BACKUP_MASTER_KEY');
  const keyStore = new FileKeyStore({ directory: backup.directory, masterKey });
  return new FilesystemBackupStore({
    directory: backup.directory,
    keyStore,
    authenticator: configuredAuthenticator(keyStore, backup),
    ...(gzipLevel === undefined ? {} : { gzipLevel }),
  });
}

/** The authenticator of the configuration: `BACKUP_AUTHENTICATION_SECRET` and `BACKUP_ACCEPT_UNAUTHENTICATED`. */
export function configuredAuthenticator(
  keyStore: KeyStore,
  backup: { authenticationSecretBase64?: string | undefined; acceptUnauthenticated?: boolean },
): BackupAuthenticator {
  return new BackupAuthenticator({
    keyStore,
    ...(backup.authenticationSecretBase64 === undefined
      ? {}
      : { secret: Buffer.from(backup.authenticationSecretBase64, 'base64') }),
    acceptUnauthenticated: backup.acceptUnauthenticated ?? false,
  });
}
