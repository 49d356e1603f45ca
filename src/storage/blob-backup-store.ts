import { createWriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { z } from 'zod';
import { FailureType, permanentFailure, type FailureContext } from '../errors';
import { classifyReadError, decodeArtifact, encodeArtifact, hashStoredBytes } from './artifact-pipeline';
import { decompressZstdToFile } from './zstd-stream';
import {
  formatSidecar,
  parseSidecar,
  recordOf,
  sidecarAuthentication,
  unsignedSidecar,
  type Sidecar,
} from './artifact-sidecar';
import { BackupAuthenticator, documentAuthenticationSchema } from './backup-authentication';
import {
  artifactKey,
  assertJsonDocumentName,
  backupContents,
  backupPrefix,
  describeArtifact,
  documentKey,
  isSafeSegment,
  MANIFEST_FILE,
  markerKey,
  organizationPrefix,
  sidecarKey,
} from './backup-layout';
import type {
  ArtifactCompression,
  ArtifactRecord,
  ArtifactRef,
  ArtifactStat,
  ArtifactVerification,
  ArtifactWriteOptions,
  ArtifactWriter,
  BackupListing,
  BackupRef,
  BackupStore,
  StoredArtifactReader,
} from './backup-store';
import { readBlob, type BlobStore } from './blob-store';
import { artifactBinding } from './encryption';
import type { KeyStore } from './key-store';

const markerSchema = z.object({ startedAt: z.string() });

export interface BlobBackupStoreOptions {
  /** Where the bytes live. */
  blobs: BlobStore;
  /** Wraps and holds the organizations' data keys; encryption is on when it has a master key. */
  keyStore: KeyStore;
  /** gzip level 1-9 for formats that are not compressed already. @default 1 (fastest: backups race the raw tools) */
  gzipLevel?: number;
  /**
   * Signs and checks manifests and sidecars (backup-authentication.ts).
   * @default one on `keyStore` alone: documents are authenticated under the data keys when a master key is set.
   */
  authenticator?: BackupAuthenticator;
}

/**
 * The {@link BackupStore} on any {@link BlobStore}: the artifact pipeline (artifact-pipeline.ts) for
 * the bytes, the layout (backup-layout.ts) for the names, and the commit protocol of artifacts and
 * backups, which is the same on every backend:
 * - An artifact is its data blob plus its sidecar, the commit marker. Order: data durable under an
 *   unfinished upload → old sidecar removed → data committed → sidecar written. A crash at any point
 *   leaves the previous complete artifact, no artifact, or data without sidecar (treated as absent
 *   and replaced by a retry), plus at most an unfinished upload.
 * - A backup exists when its manifest does; it is written last by the caller, and removed first.
 * - Nothing read back is trusted: with a key configured, the manifest and every sidecar carry an
 *   HMAC bound to their organization, backup and path, checked on every read, and encrypted chunks
 *   are bound to their backup and path (encryption format 2), so nothing can be edited or swapped in.
 */
export class BlobBackupStore implements BackupStore {
  readonly location: string;
  private readonly blobs: BlobStore;
  private readonly keyStore: KeyStore;
  private readonly gzipLevel: number;
  private readonly authenticator: BackupAuthenticator;

  constructor(options: BlobBackupStoreOptions) {
    this.blobs = options.blobs;
    this.keyStore = options.keyStore;
    this.authenticator = options.authenticator ?? new BackupAuthenticator({ keyStore: options.keyStore });
    this.gzipLevel = options.gzipLevel ?? 1;
    if (!Number.isInteger(this.gzipLevel) || this.gzipLevel < 1 || this.gzipLevel > 9) {
      throw new RangeError(`BackupStore options.gzipLevel must be an integer 1-9, got ${String(options.gzipLevel)}`);
    }
    this.location = options.blobs.location;
  }

  get encryptsArtifacts(): boolean {
    return this.keyStore.masterKeyId !== undefined;
  }

  async openArtifactWriter(ref: ArtifactRef, options: ArtifactWriteOptions): Promise<ArtifactWriter> {
    const key = artifactKey(ref);
    const context = artifactContext(ref);
    const dataKey = this.encryptsArtifacts ? await this.keyStore.getOrCreateDataKey(ref.orgId) : undefined;
    await this.markBackupStarted(ref);
    const upload = await this.blobs.create(key, context);
    const encoder = encodeArtifact(upload.stream, options, {
      gzipLevel: this.gzipLevel,
      dataKey,
      binding: artifactBinding(ref),
    });

    let state: 'open' | 'committed' | 'aborted' = 'open';
    return {
      stream: encoder.input,
      progress: () => encoder.progress(),
      commit: async (): Promise<ArtifactRecord> => {
        if (state !== 'open') throw new Error(`artifact writer for ${describeArtifact(ref)} is already ${state}`);
        state = 'committed';
        try {
          const record: ArtifactRecord = { path: ref.path, ...(await encoder.finish()) };
          const unsigned = unsignedSidecar(record);
          const authentication = await this.authenticator.sign(sidecarBinding(ref), unsigned);
          // The sidecar marks the artifact committed: drop the old one before the data changes under it.
          await this.blobs.delete(sidecarKey(ref), context);
          await upload.commit();
          await this.blobs.put(
            sidecarKey(ref),
            formatSidecar(record, authentication ? { unsigned, authentication } : undefined),
            context,
          );
          return record;
        } catch (err: unknown) {
          await upload.abort();
          throw err;
        }
      },
      abort: async (): Promise<void> => {
        if (state !== 'open') return;
        state = 'aborted';
        await encoder.destroy();
        await upload.abort();
      },
    };
  }

  async openArtifactReader(ref: ArtifactRef): Promise<Readable> {
    return (await this.openStoredArtifactReader(ref, [])).stream;
  }

  async copyArtifactToFile(ref: ArtifactRef, file: string, signal?: AbortSignal): Promise<void> {
    const stored = await this.openStoredArtifactReader(ref, ['zstd']);
    if (stored.compression !== 'zstd') {
      await pipeline(stored.stream, createWriteStream(file), signal ? { signal } : {});
      return;
    }
    try {
      await decompressZstdToFile(stored.stream, file, signal);
    } catch (err) {
      throw classifyReadError(err, describeArtifact(ref), artifactContext(ref));
    }
  }

  async openStoredArtifactReader(
    ref: ArtifactRef,
    passOn: readonly ArtifactCompression[],
  ): Promise<StoredArtifactReader> {
    const key = artifactKey(ref);
    const name = describeArtifact(ref);
    const context = artifactContext(ref);
    const sidecar = await this.readSidecar(ref);
    if (!sidecar)
      throw permanentFailure(
        FailureType.UnknownBackup,
        `artifact ${name} does not exist (never written or never committed)`,
        context,
      );
    const stored = await this.blobs.stat(key);
    if (!stored)
      throw permanentFailure(FailureType.UnknownBackup, `artifact ${name} has metadata but no data file`, context);
    if (stored.bytes !== sidecar.bytes) {
      throw permanentFailure(
        FailureType.ChecksumMismatch,
        `artifact ${name} has ${stored.bytes} stored bytes but ${sidecar.bytes} were written (truncated or altered)`,
        context,
      );
    }
    // Keys are resolved before any byte flows, so a missing or wrong key fails here, clearly.
    const dataKey = sidecar.encrypted
      ? await this.keyStore.getDataKey(ref.orgId, sidecar.keyId ?? '(none recorded)')
      : undefined;
    const source = await this.blobs.get(key);
    if (!source)
      throw permanentFailure(FailureType.UnknownBackup, `artifact ${name} has metadata but no data file`, context);
    const decompress = !passOn.includes(sidecar.compression);
    const stream = decodeArtifact(
      source,
      {
        decompress,
        bytes: sidecar.bytes,
        sha256: sidecar.sha256,
        compression: sidecar.compression,
        dataKey,
        // An authenticated sidecar vouches for a bound file; only an older, unauthenticated one for an unbound file.
        binding: { binding: artifactBinding(ref), allowUnbound: sidecar.formatVersion === 1 },
      },
      name,
      context,
    );
    return { stream, compression: decompress ? 'none' : sidecar.compression };
  }

  async statArtifact(ref: ArtifactRef): Promise<ArtifactStat> {
    const sidecar = await this.committedSidecar(ref);
    if (!sidecar) return { exists: false };
    return { exists: true, ...recordOf(sidecar), committedAt: sidecar.committedAt };
  }

  async verifyArtifactChecksum(ref: ArtifactRef, expectedSha256: string): Promise<ArtifactVerification> {
    const stored = await this.blobs.get(artifactKey(ref));
    if (!stored) return { exists: false, matches: false, expectedSha256, bytes: 0 };
    const { sha256: actualSha256, bytes } = await hashStoredBytes(stored);
    return {
      exists: true,
      matches: actualSha256 === expectedSha256.toLowerCase(),
      expectedSha256,
      actualSha256,
      bytes,
    };
  }

  async listArtifacts(backup: BackupRef): Promise<ArtifactRecord[]> {
    return this.committedArtifacts(backup, await this.relativeKeys(backup));
  }

  async writeJson(backup: BackupRef, name: string, value: unknown): Promise<void> {
    assertJsonDocumentName(backup, name);
    const text = JSON.stringify(value, null, 2);
    if (text === undefined)
      throw permanentFailure(FailureType.InvalidInput, `document ${name} has no JSON representation`, {
        store: 'storage',
        orgId: backup.orgId,
        object: name,
      });
    await this.markBackupStarted(backup);
    let stored = text;
    if (name === MANIFEST_FILE) {
      // Signed as it will be read back (JSON drops undefined and turns dates into strings).
      const document = JSON.parse(text) as unknown;
      const authentication = await this.authenticator.sign(manifestBinding(backup), document);
      if (authentication && document !== null && typeof document === 'object' && !Array.isArray(document))
        stored = JSON.stringify({ ...document, authentication }, null, 2);
    }
    await this.blobs.put(documentKey(backup, name), `${stored}\n`, documentContext(backup, name));
  }

  async readJson(backup: BackupRef, name: string): Promise<unknown> {
    const content = await readBlob(this.blobs, documentKey(backup, name));
    if (content === undefined) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(content.toString('utf8')) as unknown;
    } catch (err: unknown) {
      throw permanentFailure(
        FailureType.ChecksumMismatch,
        `document ${name} is not valid JSON (corrupted)`,
        documentContext(backup, name),
        err,
      );
    }
    if (name !== MANIFEST_FILE) return parsed;
    return this.authenticatedManifest(backup, parsed);
  }

  /** The manifest without its `authentication`, once that is checked. */
  private async authenticatedManifest(backup: BackupRef, parsed: unknown): Promise<unknown> {
    const where = `manifest ${backup.orgId}/${backup.backupId}/${MANIFEST_FILE}`;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      await this.authenticator.verify(manifestBinding(backup), parsed, undefined, where);
      return parsed;
    }
    const { authentication: raw, ...document } = parsed as Record<string, unknown>;
    const authentication = raw === undefined ? undefined : documentAuthenticationSchema.safeParse(raw);
    if (authentication && !authentication.success)
      throw permanentFailure(
        FailureType.ChecksumMismatch,
        `${where} has a malformed authentication field`,
        documentContext(backup, MANIFEST_FILE),
      );
    await this.authenticator.verify(manifestBinding(backup), document, authentication?.data, where);
    return document;
  }

  async deleteJson(backup: BackupRef, name: string): Promise<{ deleted: boolean }> {
    const key = documentKey(backup, name);
    if (name === MANIFEST_FILE)
      throw permanentFailure(
        FailureType.InvalidInput,
        'the manifest is removed only with its whole backup (deleteBackup)',
        documentContext(backup, name),
      );
    return { deleted: await this.blobs.delete(key, documentContext(backup, name)) };
  }

  async listBackups(orgId: string): Promise<BackupListing[]> {
    const listings: BackupListing[] = [];
    for (const backupId of (await this.blobs.listPrefixes(organizationPrefix(orgId))).filter(isSafeSegment)) {
      const backup: BackupRef = { orgId, backupId };
      const keys = await this.relativeKeys(backup);
      const contents = backupContents(keys);
      // A listing reports sizes; what is read or restored is authenticated when it is read.
      const artifacts = await this.committedArtifacts(backup, keys, false);
      listings.push({
        orgId,
        backupId,
        startedAt: await this.backupStartedAt(backup, keys, contents.hasMarker),
        complete: contents.complete,
        verified: contents.verified,
        artifactCount: artifacts.length,
        storedBytes: artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
        temporaryFiles: (await this.blobs.listUnfinished(backupPrefix(backup))).length,
      });
    }
    return listings.sort((a, b) =>
      a.startedAt !== b.startedAt
        ? a.startedAt < b.startedAt
          ? 1
          : -1
        : a.backupId < b.backupId
          ? 1
          : a.backupId > b.backupId
            ? -1
            : 0,
    );
  }

  async listOrganizations(): Promise<string[]> {
    return (await this.blobs.listPrefixes('')).filter(isSafeSegment);
  }

  async deleteBackup(backup: BackupRef): Promise<{ deleted: boolean }> {
    const context = backupContext(backup);
    // The manifest goes first and durably: from here on the backup is incomplete, never "complete but partial".
    const hadManifest = await this.blobs.delete(documentKey(backup, MANIFEST_FILE), context);
    const hadAnything = await this.blobs.deletePrefix(backupPrefix(backup), context);
    return { deleted: hadManifest || hadAnything };
  }

  async removeTemporaryFiles(backup: BackupRef): Promise<string[]> {
    const prefix = backupPrefix(backup);
    const context = backupContext(backup);
    const removed: string[] = [];
    for (const key of await this.blobs.listUnfinished(prefix)) {
      await this.blobs.delete(key, context);
      removed.push(key.slice(prefix.length));
    }
    return removed;
  }

  /** Keys of the backup's committed blobs, relative to the backup. */
  private async relativeKeys(backup: BackupRef): Promise<string[]> {
    const prefix = backupPrefix(backup);
    return (await this.blobs.list(prefix)).map((key) => key.slice(prefix.length));
  }

  private async committedArtifacts(
    backup: BackupRef,
    relativeKeys: readonly string[],
    authenticate = true,
  ): Promise<ArtifactRecord[]> {
    const records: ArtifactRecord[] = [];
    for (const path of backupContents(relativeKeys).artifactPaths) {
      const sidecar = await this.committedSidecar({ ...backup, path }, authenticate);
      if (sidecar) records.push(recordOf(sidecar));
    }
    return records;
  }

  /**
   * The sidecar of `ref`, authenticated unless `authenticate` is false (a listing's sizes only).
   * @throws `ChecksumMismatch` naming the artifact when it fails authentication, or is unauthenticated where that is refused.
   */
  private async readSidecar(ref: ArtifactRef, authenticate = true): Promise<Sidecar | undefined> {
    const content = await readBlob(this.blobs, sidecarKey(ref));
    if (content === undefined) return undefined;
    const sidecar = parseSidecar(ref, content);
    if (authenticate) {
      const { unsigned, authentication } = sidecarAuthentication(sidecar);
      await this.authenticator.verify(
        sidecarBinding(ref),
        unsigned,
        authentication,
        `metadata of artifact ${describeArtifact(ref)}`,
      );
    }
    return sidecar;
  }

  /** The sidecar of an artifact whose data is there too: a committed artifact. */
  private async committedSidecar(ref: ArtifactRef, authenticate = true): Promise<Sidecar | undefined> {
    const sidecar = await this.readSidecar(ref, authenticate);
    return sidecar && (await this.blobs.stat(artifactKey(ref))) ? sidecar : undefined;
  }

  /** Records when the backup started, once; listing sorts on it. */
  private async markBackupStarted(backup: BackupRef): Promise<void> {
    const marker = `${JSON.stringify({ orgId: backup.orgId, backupId: backup.backupId, startedAt: new Date().toISOString() })}\n`;
    await this.blobs.putIfAbsent(markerKey(backup), marker, backupContext(backup));
  }

  /**
   * The marker's time; without one (a folder made by hand, or a crash while writing it), the time of
   * the backup's oldest blob, or the epoch for a backup with none: an empty folder holds nothing to keep.
   */
  private async backupStartedAt(
    backup: BackupRef,
    relativeKeys: readonly string[],
    hasMarker: boolean,
  ): Promise<string> {
    const prefix = backupPrefix(backup);
    if (hasMarker) {
      const content = await readBlob(this.blobs, markerKey(backup));
      try {
        const parsed = markerSchema.safeParse(JSON.parse(content?.toString('utf8') ?? ''));
        if (parsed.success) return parsed.data.startedAt;
      } catch {
        // Short or corrupted: fall back like a missing marker.
      }
    }
    const times: string[] = [];
    for (const key of relativeKeys) {
      const stat = await this.blobs.stat(`${prefix}${key}`);
      if (stat) times.push(stat.modifiedAt);
    }
    return times.sort()[0] ?? new Date(0).toISOString();
  }
}

function sidecarBinding(ref: ArtifactRef) {
  return { purpose: 'sidecar' as const, orgId: ref.orgId, backupId: ref.backupId, path: ref.path };
}

function manifestBinding(backup: BackupRef) {
  return { purpose: 'manifest' as const, orgId: backup.orgId, backupId: backup.backupId };
}

function artifactContext(ref: ArtifactRef): FailureContext {
  return { store: 'storage', orgId: ref.orgId, object: describeArtifact(ref) };
}

function backupContext(backup: BackupRef): FailureContext {
  return { store: 'storage', orgId: backup.orgId, object: `${backup.orgId}/${backup.backupId}` };
}

function documentContext(backup: BackupRef, name: string): FailureContext {
  return { store: 'storage', orgId: backup.orgId, object: `${backup.orgId}/${backup.backupId}/${name}` };
}
