import { randomBytes } from 'node:crypto';
import { FailureType, permanentFailure, type FailureContext } from '../errors';
import { assertSafeSegment, isSafeSegment, KEYS_FILE, keysKey } from './backup-layout';
import type { VersionedBlobStore } from './blob-store';
import { masterKeyId, newDataKeyId, unwrapDataKey, wrapDataKey, type DataKey } from './encryption';
import {
  dataKeyFromKeysFile,
  parseKeysFile,
  requireMasterKey,
  rotationLeftKeysFailure,
  type KeyInventory,
  type KeysFile,
  type KeyStore,
  type RotationReport,
} from './key-store';

/**
 * A change of a keys document that lost the race this many times in a row is reported (and the
 * activity retried) rather than tried forever: each attempt is one GET and one PUT, and losing
 * needs another worker to change the same organization's keys in between.
 */
const MAX_CHANGE_ATTEMPTS = 20;

export interface BlobKeyStoreOptions {
  /** The backup store's blobs (S3Blobs): the keys go to `<orgId>/keys.json` beside the backups. */
  blobs: VersionedBlobStore;
  /** 32-byte master key, or `undefined` for no encryption (destroying keys needs none). */
  masterKey: Buffer | undefined;
}

/** What rotation found (and did) for one organization. */
type RotationOutcome =
  | { kind: 'noKey' }
  | { kind: 'alreadyRotated' }
  | { kind: 'rewrapped' }
  | { kind: 'unknownMasterKey'; masterKeyId: string };

/** A keys document as read, with the entity tag a conditional write must match. */
interface TaggedKeys {
  keys: KeysFile;
  etag: string;
}

/**
 * The {@link KeyStore} in the bucket of the backups, `<orgId>/keys.json` (the same document as
 * {@link FileKeyStore}'s), shared by every worker: a backup encrypted by one is read by any other,
 * and no key lives on a pod's volume.
 *
 * Every change is a compare-and-swap on the object's entity tag, so no lock is needed across
 * workers: the first key is created with `If-None-Match: *` (of two workers creating it at once,
 * one wins and the other reads the winner's key), rotation and shredding write with
 * `If-Match: <etag>` of what they read, and a writer that lost re-reads and decides again.
 *
 * Shredding replaces the document with a tombstone (the logical destruction, atomic), then removes
 * every other stored version of the object: on a versioned bucket each earlier version still holds
 * the wrapped key, so each one is deleted by its version id, and the store lists the versions again
 * to prove that only the tombstone is left. Rotation removes the earlier versions too, which hold
 * the key wrapped under the old master key.
 */
export class BlobKeyStore implements KeyStore, KeyInventory {
  readonly masterKeyId: string | undefined;
  private readonly blobs: VersionedBlobStore;
  private readonly masterKey: Buffer | undefined;

  constructor(options: BlobKeyStoreOptions) {
    this.blobs = options.blobs;
    this.masterKey = options.masterKey;
    this.masterKeyId = options.masterKey ? masterKeyId(options.masterKey) : undefined;
  }

  async getOrCreateDataKey(orgId: string): Promise<DataKey> {
    const master = requireMasterKey(this.masterKey, orgId, 'encrypt a new artifact');
    return this.change(orgId, async (current) => {
      const entry = current?.keys.dataKey;
      if (entry) return { result: unwrapDataKey(master, orgId, entry.keyId, entry.wrapped) };
      const dataKey: DataKey = { orgId, keyId: newDataKeyId(), key: randomBytes(32) };
      const next: KeysFile = {
        formatVersion: 1,
        orgId,
        dataKey: { keyId: dataKey.keyId, createdAt: new Date().toISOString(), wrapped: wrapDataKey(master, dataKey) },
        destroyed: current?.keys.destroyed ?? [],
      };
      return { result: dataKey, write: next };
    });
  }

  async getDataKey(orgId: string, keyId: string): Promise<DataKey> {
    const current = await this.read(orgId);
    return dataKeyFromKeysFile(current?.keys, orgId, keyId, this.masterKey, this.location(orgId));
  }

  async destroyDataKey(orgId: string): Promise<{ destroyedKeyIds: string[] }> {
    assertSafeSegment('organization id', orgId);
    const destroyedKeyIds = await this.change(orgId, async (current) => {
      const entry = current?.keys.dataKey;
      if (!current || !entry) return { result: [] };
      const tombstone: KeysFile = {
        formatVersion: 1,
        orgId,
        dataKey: null,
        destroyed: [...current.keys.destroyed, { keyId: entry.keyId, destroyedAt: new Date().toISOString() }],
      };
      return { result: [entry.keyId], write: tombstone };
    });
    // Also when nothing was destroyed now: a shredding interrupted after its tombstone is finished here.
    await this.removeEarlierVersions(orgId);
    await this.assertOnlyTombstoneLeft(orgId);
    return { destroyedKeyIds };
  }

  async rotateMasterKey(oldMasterKey: Buffer, newMasterKey: Buffer): Promise<RotationReport> {
    const fromId = masterKeyId(oldMasterKey);
    const toId = masterKeyId(newMasterKey);
    const report: RotationReport = { fromMasterKeyId: fromId, toMasterKeyId: toId, rewrapped: [], alreadyRotated: [] };
    const unknown: string[] = [];
    for (const orgId of await this.organizationsWithKeys()) {
      const outcome = await this.change<RotationOutcome>(orgId, async (current) => {
        const entry = current?.keys.dataKey;
        if (!current || !entry) return { result: { kind: 'noKey' } };
        if (entry.wrapped.masterKeyId === toId) return { result: { kind: 'alreadyRotated' } };
        if (entry.wrapped.masterKeyId !== fromId)
          return { result: { kind: 'unknownMasterKey', masterKeyId: entry.wrapped.masterKeyId } };
        const dataKey = unwrapDataKey(oldMasterKey, orgId, entry.keyId, entry.wrapped);
        const rewrapped = wrapDataKey(newMasterKey, dataKey);
        dataKey.key.fill(0);
        return {
          result: { kind: 'rewrapped' },
          write: { ...current.keys, dataKey: { ...entry, wrapped: rewrapped } },
        };
      });
      if (outcome.kind === 'unknownMasterKey') unknown.push(`${orgId} (${outcome.masterKeyId})`);
      if (outcome.kind === 'rewrapped') report.rewrapped.push(orgId);
      if (outcome.kind === 'alreadyRotated') report.alreadyRotated.push(orgId);
      // Earlier versions hold the key wrapped under the old master key; a resumed rotation removes them too.
      if (outcome.kind === 'rewrapped' || outcome.kind === 'alreadyRotated') await this.removeEarlierVersions(orgId);
    }
    if (unknown.length > 0) throw rotationLeftKeysFailure(report, unknown);
    return report;
  }

  /** Organizations (folders of the store, namespaces like `_platform` included) with a keys document, sorted. */
  async organizationsWithKeys(): Promise<string[]> {
    const found: string[] = [];
    for (const name of (await this.blobs.listPrefixes('')).filter(isSafeSegment)) {
      if (await this.blobs.stat(keysKey(name))) found.push(name);
    }
    return found;
  }

  async describe(orgId: string): Promise<{ keyId?: string; masterKeyId?: string; destroyed: string[] }> {
    const keys = (await this.read(orgId))?.keys;
    return {
      ...(keys?.dataKey ? { keyId: keys.dataKey.keyId, masterKeyId: keys.dataKey.wrapped.masterKeyId } : {}),
      destroyed: keys?.destroyed.map((entry) => entry.keyId) ?? [],
    };
  }

  /**
   * Reads the organization's keys, lets `decide` answer from them and perhaps name the document to
   * write, and writes it only if nobody changed the object since the read; otherwise reads again.
   */
  private async change<T>(
    orgId: string,
    decide: (current: TaggedKeys | undefined) => Promise<{ result: T; write?: KeysFile }>,
  ): Promise<T> {
    const key = keysKey(orgId);
    for (let attempt = 1; attempt <= MAX_CHANGE_ATTEMPTS; attempt++) {
      const current = await this.read(orgId);
      const { result, write } = await decide(current);
      if (!write) return result;
      const etag = await this.blobs.putIfUnchanged(
        key,
        `${JSON.stringify(write, null, 2)}\n`,
        current?.etag,
        this.context(orgId),
      );
      if (etag !== undefined) return result;
      await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 40 * attempt));
    }
    // Retryable on purpose: contention is transient.
    throw new Error(
      `[storage org=${orgId} object=${this.location(orgId)}] the keys document changed under ${MAX_CHANGE_ATTEMPTS} attempts in a row to change it`,
    );
  }

  private async read(orgId: string): Promise<TaggedKeys | undefined> {
    const blob = await this.blobs.getTagged(keysKey(orgId));
    if (!blob) return undefined;
    return { keys: parseKeysFile(blob.content.toString('utf8'), orgId, this.location(orgId)), etag: blob.etag };
  }

  /**
   * Deletes every version of the keys object but the current one (which a writer may have replaced
   * meanwhile: only ever the current version is kept, so nothing newer than what was listed is
   * lost), and every delete marker but a current one. On a bucket without versioning there is
   * nothing but the current object.
   */
  private async removeEarlierVersions(orgId: string): Promise<void> {
    const key = keysKey(orgId);
    const context = this.context(orgId);
    for (const version of await this.blobs.listVersions(key, context)) {
      if (!version.isLatest) await this.blobs.deleteVersion(key, version.versionId, context);
    }
  }

  /**
   * Proves the shredding: every version left must be the current one, and the current document must
   * hold no wrapped key that a tombstone names (a key created after the shredding, by a backup
   * started meanwhile, is not the one destroyed).
   * @throws ApplicationFailure `VerificationFailed` naming the object and the versions that remain.
   */
  private async assertOnlyTombstoneLeft(orgId: string): Promise<void> {
    const key = keysKey(orgId);
    const remaining = (await this.blobs.listVersions(key, this.context(orgId))).filter((version) => !version.isLatest);
    const current = (await this.read(orgId))?.keys;
    const stillWrapped = current?.dataKey && current.destroyed.some((entry) => entry.keyId === current.dataKey?.keyId);
    if (remaining.length > 0 || stillWrapped) {
      throw permanentFailure(
        FailureType.VerificationFailed,
        `crypto-shredding left the wrapped data key readable in ${this.location(orgId)}: ${
          remaining.length > 0
            ? `version(s) ${remaining.map((version) => version.versionId).join(', ')} are still stored (object lock, retention or a missing s3:DeleteObjectVersion permission?)`
            : 'the current document still holds a destroyed key'
        }`,
        this.context(orgId),
      );
    }
  }

  private location(orgId: string): string {
    return `${this.blobs.location}${keysKey(orgId)}`;
  }

  private context(orgId: string): FailureContext {
    return { store: 'storage', orgId, object: `${orgId}/${KEYS_FILE}` };
  }
}
