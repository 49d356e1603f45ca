import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { errorCodes, FailureType, permanentFailure } from '../errors';
import { assertSafeSegment, KEYS_FILE, keysKey } from './backup-layout';
import { masterKeyId, newDataKeyId, unwrapDataKey, wrapDataKey, type DataKey, type WrappedKey } from './encryption';
import { classifyFilesystemError, fsyncDirectory, writeFileAtomically } from './filesystem-io';

/**
 * Where the organizations' data keys live, wrapped by the master key.
 *
 * Decision: the wrapped keys are stored BESIDE THE BACKUPS, in `<orgId>/keys.json` of the backup store
 * itself, not in PostgreSQL. A restore of the platform database (which the platform backup includes)
 * must never bring back a key that crypto-shredding destroyed, and reading a backup must not depend on
 * the database it may be restoring. Beside the backups means in the same store: {@link FileKeyStore}
 * under `BACKUP_DIR` for the filesystem store, BlobKeyStore (blob-key-store.ts) in the bucket for
 * `BACKUP_STORE=s3`, so every worker that reads the backups reads the same keys, and no key lives
 * on one pod's volume. The filesystem serializes changes with a lock directory; the bucket with
 * conditional writes on the object's ETag (`If-None-Match: *` to create, `If-Match` to change).
 * Consequences an operator must know:
 * - A copy of the backups that includes `keys.json` (rsync, snapshots, bucket replication, off-site
 *   replicas) is also a copy of the wrapped keys: shredding removes only the store's own, though
 *   every version of it in a versioned bucket. Such copies stay unreadable only while the master key
 *   that wraps them is unknown, so rotate the master key after shredding when copies exist, and keep
 *   `keys.json` out of replicas that outlive a deletion.
 * - Overwriting a file before unlinking it does not erase it on copy-on-write or flash storage; the
 *   overwrite is a best effort, the guarantee rests on the master key. The same holds for an object
 *   store's own media.
 */
export interface KeyStore {
  /** Id of the configured master key, or `undefined` when none is configured (no encryption). */
  readonly masterKeyId: string | undefined;

  /**
   * The organization's data key, created (random 256 bits, wrapped by the master key) on first use.
   * Safe under concurrency: parallel activities of one backup get the same key.
   * @throws ApplicationFailure `DecryptionFailed` when no master key is configured or the existing key
   *   is wrapped under another master key.
   */
  getOrCreateDataKey(orgId: string): Promise<DataKey>;

  /**
   * A data key by id, for reading.
   * @throws ApplicationFailure `DecryptionFailed` naming the reason: no master key configured, key
   *   destroyed (with the time), unknown, or wrapped under another master key.
   */
  getDataKey(orgId: string, keyId: string): Promise<DataKey>;

  /**
   * Crypto-shredding: overwrites and removes the organization's wrapped data key, keeping only a
   * tombstone (key id and time). Every artifact encrypted under it becomes unreadable by any means of
   * this project. Needs no master key. Idempotent: returns the ids destroyed by this call (empty when
   * there was nothing left to destroy).
   */
  destroyDataKey(orgId: string): Promise<{ destroyedKeyIds: string[] }>;

  /**
   * Re-wraps every organization's data key from `oldMasterKey` to `newMasterKey`; no artifact is touched.
   * Resumable: keys already wrapped under the new master key are skipped, so an interrupted rotation is
   * finished by running it again. Until it has finished, configure the OLD key.
   * @throws ApplicationFailure `DecryptionFailed` listing organizations whose key is wrapped under neither key
   *   (after rotating every other one).
   */
  rotateMasterKey(oldMasterKey: Buffer, newMasterKey: Buffer): Promise<RotationReport>;
}

export interface RotationReport {
  fromMasterKeyId: string;
  toMasterKeyId: string;
  /** Organizations whose key this run re-wrapped. */
  rewrapped: string[];
  /** Organizations already wrapped under the new key (an earlier, interrupted run). */
  alreadyRotated: string[];
}

const LOCK_DIR = '.keys.lock';
/** A lock older than this was left by a crashed process: key operations take milliseconds. */
const STALE_LOCK_MS = 30_000;
const LOCK_WAIT_MS = 15_000;

const wrappedKeySchema = z.object({
  algorithm: z.literal('aes-256-gcm'),
  masterKeyId: z.string().min(1),
  iv: z.string().min(1),
  ciphertext: z.string().min(1),
  tag: z.string().min(1),
});

/** The document of an organization's keys, the same on a filesystem and in a bucket. */
export const keysFileSchema = z.object({
  formatVersion: z.literal(1),
  orgId: z.string(),
  dataKey: z
    .object({
      keyId: z.string().regex(/^dk_[0-9a-f]{16}$/),
      createdAt: z.string(),
      wrapped: wrappedKeySchema,
    })
    .nullable(),
  destroyed: z.array(z.object({ keyId: z.string(), destroyedAt: z.string() })),
});
export type KeysFile = z.infer<typeof keysFileSchema>;

/** What the operator command (`npm run keys -- status`) reads, with no key material. */
export interface KeyInventory {
  /** Organizations with a keys document, sorted. */
  organizationsWithKeys(): Promise<string[]>;
  /** The organization's current key id, the master key id wrapping it, and the destroyed key ids. */
  describe(orgId: string): Promise<{ keyId?: string; masterKeyId?: string; destroyed: string[] }>;
}

/**
 * Parses an organization's keys document read from `where` (a path or an object URL).
 * @throws ApplicationFailure `DecryptionFailed` when it is not JSON or does not describe `orgId`'s keys.
 */
export function parseKeysFile(text: string, orgId: string, where: string): KeysFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err: unknown) {
    throw permanentFailure(
      FailureType.DecryptionFailed,
      `key file ${where} is not valid JSON (corrupted); restore it from a copy`,
      { store: 'storage', orgId, object: KEYS_FILE },
      err,
    );
  }
  const result = keysFileSchema.safeParse(parsed);
  if (!result.success || result.data.orgId !== orgId) {
    throw permanentFailure(
      FailureType.DecryptionFailed,
      `key file ${where} does not describe organization ${orgId}'s keys (corrupted or misplaced)`,
      {
        store: 'storage',
        orgId,
        object: KEYS_FILE,
      },
    );
  }
  return result.data;
}

/**
 * The data key `keyId` from an organization's keys document, unwrapped.
 * @throws ApplicationFailure `DecryptionFailed`: destroyed (with the time), not in `where`, no master key, or another master key.
 */
export function dataKeyFromKeysFile(
  keys: KeysFile | undefined,
  orgId: string,
  keyId: string,
  masterKey: Buffer | undefined,
  where: string,
): DataKey {
  const tombstone = keys?.destroyed.find((entry) => entry.keyId === keyId);
  if (tombstone) {
    throw permanentFailure(
      FailureType.DecryptionFailed,
      `data key ${keyId} was destroyed (crypto-shredded) at ${tombstone.destroyedAt}; artifacts encrypted under it can no longer be read`,
      { store: 'storage', orgId, object: keyId },
    );
  }
  if (!keys?.dataKey || keys.dataKey.keyId !== keyId) {
    throw permanentFailure(
      FailureType.DecryptionFailed,
      `data key ${keyId} is not in the key store (${where}): it was lost or the artifact belongs to another organization`,
      { store: 'storage', orgId, object: keyId },
    );
  }
  const master = requireMasterKey(masterKey, orgId, `read artifacts encrypted under data key ${keyId}`);
  return unwrapDataKey(master, orgId, keyId, keys.dataKey.wrapped);
}

/** @throws ApplicationFailure `DecryptionFailed` naming BACKUP_MASTER_KEY when none is configured. */
export function requireMasterKey(masterKey: Buffer | undefined, orgId: string, purpose: string): Buffer {
  if (!masterKey) {
    throw permanentFailure(
      FailureType.DecryptionFailed,
      `no master key is configured (BACKUP_MASTER_KEY), so the worker cannot ${purpose}`,
      {
        store: 'storage',
        orgId,
        object: KEYS_FILE,
      },
    );
  }
  return masterKey;
}

/** The failure of a rotation that met keys wrapped under neither master key (after rotating every other one). */
export function rotationLeftKeysFailure(report: RotationReport, unknown: string[]): Error {
  return permanentFailure(
    FailureType.DecryptionFailed,
    `master key rotation ${report.fromMasterKeyId} → ${report.toMasterKeyId} re-wrapped ${report.rewrapped.length} organization(s), but these keys are wrapped under neither: ${unknown.join(', ')}`,
    { store: 'storage', object: KEYS_FILE },
  );
}

export interface FileKeyStoreOptions {
  /** Root of the backup directory; keys go to `<directory>/<orgId>/keys.json`. */
  directory: string;
  /** 32-byte master key, or `undefined` for no encryption. */
  masterKey: Buffer | undefined;
}

/** The {@link KeyStore} in `<backup dir>/<orgId>/keys.json`, one JSON file per organization. */
export class FileKeyStore implements KeyStore, KeyInventory {
  readonly masterKeyId: string | undefined;
  private readonly directory: string;
  private readonly masterKey: Buffer | undefined;

  constructor(options: FileKeyStoreOptions) {
    this.directory = options.directory;
    this.masterKey = options.masterKey;
    this.masterKeyId = options.masterKey ? masterKeyId(options.masterKey) : undefined;
  }

  async getOrCreateDataKey(orgId: string): Promise<DataKey> {
    const master = requireMasterKey(this.masterKey, orgId, 'encrypt a new artifact');
    const existing = await this.readKeys(orgId);
    if (existing?.dataKey) return unwrapDataKey(master, orgId, existing.dataKey.keyId, existing.dataKey.wrapped);
    // Creating must be exclusive: two activities creating different keys would leave one's artifacts unreadable.
    return this.withLock(orgId, async () => {
      const current = await this.readKeys(orgId);
      if (current?.dataKey) return unwrapDataKey(master, orgId, current.dataKey.keyId, current.dataKey.wrapped);
      const dataKey: DataKey = { orgId, keyId: newDataKeyId(), key: randomBytes(32) };
      const next: KeysFile = {
        formatVersion: 1,
        orgId,
        dataKey: { keyId: dataKey.keyId, createdAt: new Date().toISOString(), wrapped: wrapDataKey(master, dataKey) },
        destroyed: current?.destroyed ?? [],
      };
      await this.writeKeys(orgId, next);
      return dataKey;
    });
  }

  async getDataKey(orgId: string, keyId: string): Promise<DataKey> {
    return dataKeyFromKeysFile(await this.readKeys(orgId), orgId, keyId, this.masterKey, this.keysPath(orgId));
  }

  async destroyDataKey(orgId: string): Promise<{ destroyedKeyIds: string[] }> {
    assertSafeSegment('organization id', orgId);
    return this.withLock(orgId, async () => {
      const keys = await this.readKeys(orgId);
      if (!keys?.dataKey) return { destroyedKeyIds: [] };
      const file = this.keysPath(orgId);
      const tombstone: KeysFile = {
        formatVersion: 1,
        orgId,
        dataKey: null,
        destroyed: [...keys.destroyed, { keyId: keys.dataKey.keyId, destroyedAt: new Date().toISOString() }],
      };
      // Hold the old file open: after the tombstone replaces it (the atomic, logical destruction),
      // its blocks are overwritten through this descriptor, so no window leaves the key both listed and erased.
      const old = await open(file, fsConstants.O_RDWR);
      try {
        const { size } = await old.stat();
        await this.writeKeys(orgId, tombstone);
        await old.write(randomBytes(size), 0, size, 0);
        await old.sync();
      } finally {
        await old.close();
      }
      return { destroyedKeyIds: [keys.dataKey.keyId] };
    });
  }

  async rotateMasterKey(oldMasterKey: Buffer, newMasterKey: Buffer): Promise<RotationReport> {
    const fromId = masterKeyId(oldMasterKey);
    const toId = masterKeyId(newMasterKey);
    const report: RotationReport = { fromMasterKeyId: fromId, toMasterKeyId: toId, rewrapped: [], alreadyRotated: [] };
    const unknown: string[] = [];
    for (const orgId of await this.organizationsWithKeys()) {
      await this.withLock(orgId, async () => {
        const keys = await this.readKeys(orgId);
        const entry = keys?.dataKey;
        if (!keys || !entry) return;
        if (entry.wrapped.masterKeyId === toId) {
          report.alreadyRotated.push(orgId);
          return;
        }
        if (entry.wrapped.masterKeyId !== fromId) {
          unknown.push(`${orgId} (${entry.wrapped.masterKeyId})`);
          return;
        }
        const dataKey = unwrapDataKey(oldMasterKey, orgId, entry.keyId, entry.wrapped);
        const rewrapped: WrappedKey = wrapDataKey(newMasterKey, dataKey);
        await this.writeKeys(orgId, { ...keys, dataKey: { ...entry, wrapped: rewrapped } });
        dataKey.key.fill(0);
        report.rewrapped.push(orgId);
      });
    }
    if (unknown.length > 0) throw rotationLeftKeysFailure(report, unknown);
    return report;
  }

  /** Organizations with a keys file, sorted. */
  async organizationsWithKeys(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await readdir(this.directory);
    } catch (err: unknown) {
      if (isNotFound(err)) return [];
      throw err;
    }
    const found: string[] = [];
    for (const name of entries.sort()) {
      if (name.startsWith('.')) continue;
      const exists = await stat(path.join(this.directory, name, KEYS_FILE)).then(
        () => true,
        (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)),
      );
      if (exists) found.push(name);
    }
    return found;
  }

  /** The raw key file of an organization (wrapped keys and tombstones), for `npm run keys -- status`. */
  async describe(orgId: string): Promise<{ keyId?: string; masterKeyId?: string; destroyed: string[] }> {
    const keys = await this.readKeys(orgId);
    return {
      ...(keys?.dataKey ? { keyId: keys.dataKey.keyId, masterKeyId: keys.dataKey.wrapped.masterKeyId } : {}),
      destroyed: keys?.destroyed.map((entry) => entry.keyId) ?? [],
    };
  }

  private keysPath(orgId: string): string {
    return path.join(this.directory, ...keysKey(orgId).split('/'));
  }

  private async readKeys(orgId: string): Promise<KeysFile | undefined> {
    const file = this.keysPath(orgId);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err: unknown) {
      if (isNotFound(err)) return undefined;
      throw classifyFilesystemError(err, { store: 'storage', orgId, object: file });
    }
    return parseKeysFile(text, orgId, file);
  }

  private async writeKeys(orgId: string, keys: KeysFile): Promise<void> {
    await writeFileAtomically(this.keysPath(orgId), `${JSON.stringify(keys, null, 2)}\n`, {
      store: 'storage',
      orgId,
      object: KEYS_FILE,
    });
  }

  /**
   * Serializes changes of one organization's key file across processes with a lock directory
   * (`mkdir` is atomic on local filesystems and NFS). A lock older than {@link STALE_LOCK_MS} is broken.
   */
  private async withLock<T>(orgId: string, action: () => Promise<T>): Promise<T> {
    const orgDir = path.join(this.directory, orgId);
    assertSafeSegment('organization id', orgId);
    await mkdir(orgDir, { recursive: true }).catch((err: unknown) =>
      Promise.reject(classifyFilesystemError(err, { store: 'storage', orgId, object: orgDir })),
    );
    const lock = path.join(orgDir, LOCK_DIR);
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        await mkdir(lock);
        break;
      } catch (err: unknown) {
        if (!errorCodes(err).includes('EEXIST'))
          throw classifyFilesystemError(err, { store: 'storage', orgId, object: lock });
      }
      const age = await stat(lock).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > STALE_LOCK_MS) {
        // Rename first so two processes breaking the same stale lock do not remove each other's new one.
        const stale = `${lock}.stale-${randomBytes(4).toString('hex')}`;
        await rename(lock, stale).then(
          () => rm(stale, { recursive: true, force: true }),
          () => undefined,
        );
        continue;
      }
      // Retryable on purpose: a busy lock is a transient condition.
      if (Date.now() > deadline)
        throw new Error(
          `[storage org=${orgId} object=${lock}] key store lock is held by another process for more than ${LOCK_WAIT_MS} ms`,
        );
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 30));
    }
    try {
      return await action();
    } finally {
      await rm(lock, { recursive: true, force: true });
      await fsyncDirectory(orgDir).catch(() => undefined);
    }
  }
}

function isNotFound(err: unknown): boolean {
  return errorCodes(err).includes('ENOENT');
}
