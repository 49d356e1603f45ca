import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * The backup store: where artifacts, manifests and verification reports live.
 *
 * Workflows and activities only see this interface. Its one implementation, `BlobBackupStore`
 * (blob-backup-store.ts), is built in layers: the artifact pipeline (artifact-pipeline.ts) encodes
 * the bytes, the layout (backup-layout.ts) names every key, e.g. `<orgId>/<backupId>/postgres/schemas.dump`
 * and `<orgId>/<backupId>/manifest.json`, and a small blob interface (blob-store.ts) stores them. A new
 * backend, such as an S3-compatible bucket, implements only the blob interface.
 *
 * Checksums: `sha256` and `bytes` always describe the STORED bytes (after compression and
 * encryption), so verification can re-hash files without any key and an operator can check them
 * with `sha256sum`. `rawBytes` is the size of the original stream. The integrity of the original
 * bytes is enforced on read: AES-GCM tags per chunk, the gzip CRC and the stored SHA-256.
 */
export interface BackupStore {
  /** Human-readable location, for messages and logs (e.g. `filesystem:/var/backups`). */
  readonly location: string;
  /** True when new artifacts are encrypted (a master key is configured). */
  readonly encryptsArtifacts: boolean;

  /**
   * Starts writing an artifact. Nothing is visible under `ref` until `commit()` resolves; a writer
   * that is aborted, or never committed (a killed worker), leaves at most a temporary file that
   * {@link BackupStore.removeTemporaryFiles} removes. Committing over an existing artifact replaces it.
   * @throws ApplicationFailure `InvalidInput` (non-retryable) naming a bad path segment;
   *   `DiskFull` when there is no room; `DecryptionFailed` when the organization's data key cannot be unwrapped.
   */
  openArtifactWriter(ref: ArtifactRef, options: ArtifactWriteOptions): Promise<ArtifactWriter>;

  /**
   * The ORIGINAL bytes of a committed artifact (decrypted, decompressed). Key and size problems are
   * thrown here, before any byte is read. Corruption found while streaming destroys the stream with a
   * non-retryable failure (`DecryptionFailed` for a failed GCM tag, `ChecksumMismatch` for a bad gzip
   * stream or stored SHA-256); the stream never ends cleanly with wrong bytes. Because a plain
   * (unencrypted, already-compressed) artifact can only be checked against its SHA-256 at the end,
   * consumers must treat an error at the end of the stream as a failed restore.
   * @throws ApplicationFailure `UnknownBackup` when the artifact does not exist (or was never committed),
   *   `ChecksumMismatch` when its stored size differs from the recorded one (truncated),
   *   `DecryptionFailed` when its key is missing, destroyed or wrapped under another master key.
   */
  openArtifactReader(ref: ArtifactRef): Promise<Readable>;

  /**
   * The bytes of a committed artifact (decrypted, checked like {@link openArtifactReader}) left
   * compressed when stored in one of `passOn`, for a consumer that decompresses in a process of its
   * own: ClickHouse reads a gzip request body, `zstd -d` writes a file. Fewer bytes pass through the
   * worker. Any other compression is undone by the store (`compression: 'none'` then). A consumer of
   * a compressed stream must still treat an error at its end as a failure.
   */
  openStoredArtifactReader(ref: ArtifactRef, passOn: readonly ArtifactCompression[]): Promise<StoredArtifactReader>;

  /**
   * Writes the ORIGINAL bytes of a committed artifact into the local `file` (created or replaced),
   * for a tool that needs a seekable file (`pg_restore --jobs`). A zstd artifact is decompressed by
   * the zstd process straight into the file. Fails like {@link openArtifactReader}; the caller
   * removes the file on failure.
   */
  copyArtifactToFile(ref: ArtifactRef, file: string, signal?: AbortSignal): Promise<void>;

  /** Whether a committed artifact exists and what its sidecar records. Never hashes the file. */
  statArtifact(ref: ArtifactRef): Promise<ArtifactStat>;

  /**
   * Re-hashes the stored bytes of an artifact and compares them with `expectedSha256` (lowercase hex).
   * Used by a retried activity to skip artifacts a previous attempt finished, and by verification.
   * A missing artifact does not throw: it is reported with `exists: false, matches: false`.
   */
  verifyArtifactChecksum(ref: ArtifactRef, expectedSha256: string): Promise<ArtifactVerification>;

  /** Every committed artifact of a backup, sorted by path. Temporary files are not listed. */
  listArtifacts(backup: BackupRef): Promise<ArtifactRecord[]>;

  /**
   * Writes a JSON document (e.g. `manifest.json`) at the top of the backup, atomically: readers see
   * the old document or the new one, never a part. Stored unencrypted so listing and verification work
   * without keys: it must hold metadata only, never row data.
   * @throws ApplicationFailure `InvalidInput` when `name` is not a safe `*.json` file name; `DiskFull`.
   */
  writeJson(backup: BackupRef, name: string, value: unknown): Promise<void>;

  /**
   * Reads a JSON document written by {@link BackupStore.writeJson}; `undefined` when absent.
   * The caller parses the result with its own schema.
   * @throws ApplicationFailure `ChecksumMismatch` when the file is not valid JSON.
   */
  readJson(backup: BackupRef, name: string): Promise<unknown>;

  /**
   * Removes a JSON document written by {@link BackupStore.writeJson} (e.g. `hold.json`). The manifest
   * is refused: a backup is deleted whole with {@link BackupStore.deleteBackup}. Idempotent.
   * @returns whether the document existed.
   */
  deleteJson(backup: BackupRef, name: string): Promise<{ deleted: boolean }>;

  /** Backups of one organization, newest first (by start time, then backup id). Unknown org → `[]`. */
  listBackups(orgId: string): Promise<BackupListing[]>;

  /** Organization ids that have a folder in the store, sorted. */
  listOrganizations(): Promise<string[]>;

  /**
   * Deletes a backup with every artifact and document. The manifest goes first, so a deletion that is
   * interrupted leaves an incomplete backup, never one that looks complete. Idempotent: deleting a
   * backup that does not exist resolves with `deleted: false`. Never touches the organization's keys.
   */
  deleteBackup(backup: BackupRef): Promise<{ deleted: boolean }>;

  /**
   * Removes temporary files (unfinished writes) of a backup; returns their paths relative to the backup.
   * Call it only when no writer of this backup can still be running (e.g. after the backup activities
   * ended), or it removes the file a live writer is filling.
   */
  removeTemporaryFiles(backup: BackupRef): Promise<string[]>;
}

/** One backup of one organization. */
export interface BackupRef {
  orgId: string;
  backupId: string;
}

/** One artifact of a backup; `path` is relative to the backup, `/`-separated (`postgres/shared/public.users.copy`). */
export interface ArtifactRef extends BackupRef {
  path: string;
}

export type ArtifactCompression = 'gzip' | 'none' | 'zstd';

/** An artifact's stored bytes and how they are compressed (`none`: they are the original bytes). */
export interface StoredArtifactReader {
  stream: Readable;
  compression: ArtifactCompression;
}

export interface ArtifactWriteOptions {
  /**
   * True when the format is compressed already (pg_dump custom format), so gzip would only cost CPU.
   * False for ClickHouse Native, COPY text, SQL: they are gzip-compressed.
   */
  alreadyCompressed: boolean;
  /**
   * True when the bytes piped in are one gzip stream already (ClickHouse's HTTP compression): they
   * are stored as they come and recorded as `gzip`, so readers still get the original bytes back.
   * The server compresses in its own threads, and the worker never sees, re-reads or re-compresses
   * the original bytes; `rawBytes` then counts the gzip bytes received.
   */
  gzipped?: boolean;
  /**
   * `zstd`: compress with zstd (level 1, in a child process; see zstd-stream.ts) instead of gzip,
   * recorded as `zstd`; readers get the original bytes back. Used for pg_dump archives written
   * uncompressed (`--compress=0`), so compression runs beside the dump instead of inside it.
   */
  compressWith?: 'zstd';
  /**
   * True when the bytes piped in are one zstd stream already (a tool's output compressed by zstd
   * reading it directly, zstd-stream.ts `compressZstdFrom`): stored as they come and recorded as
   * `zstd`; `rawBytes` then counts the zstd bytes received, as for `gzipped`.
   */
  zstdCompressed?: boolean;
}

/** An artifact being written. Pipe the original bytes into `stream`, then `commit()`, or `abort()`. */
export interface ArtifactWriter {
  /** Sink of the original bytes. Errors of the store (e.g. `DiskFull`) destroy it with the classified failure. */
  readonly stream: Writable;
  /** Bytes accepted so far (original) and stored so far, for heartbeats. */
  progress(): { rawBytes: number; bytes: number };
  /**
   * Ends `stream` if the caller has not, waits until every byte is durable (fsync of the file and its
   * folder), then makes the artifact visible atomically.
   * @throws the failure that destroyed the stream, or `DiskFull`; the temporary file is removed then.
   */
  commit(): Promise<ArtifactRecord>;
  /** Discards everything written; nothing remains under the artifact's name or a temporary name. Never throws. */
  abort(): Promise<void>;
}

/** What the manifest records of one artifact. */
export interface ArtifactRecord {
  /** Path relative to the backup, as given in the {@link ArtifactRef}. */
  path: string;
  /** Stored size in bytes (after compression and encryption). */
  bytes: number;
  /** Size in bytes of the stream received (the original bytes; the gzip bytes for a `gzipped` write). */
  rawBytes: number;
  /** Lowercase hex SHA-256 of the stored bytes (what `sha256sum <file>` prints). */
  sha256: string;
  compression: ArtifactCompression;
  encrypted: boolean;
  /** Id of the organization's data key that encrypts the artifact; absent when not encrypted. */
  keyId?: string;
}

export type ArtifactStat = { exists: false } | ({ exists: true; committedAt: string } & ArtifactRecord);

export interface ArtifactVerification {
  exists: boolean;
  matches: boolean;
  expectedSha256: string;
  /** Absent when the artifact does not exist. */
  actualSha256?: string;
  /** Stored bytes hashed. */
  bytes: number;
}

/** One backup as the store sees it; the manifest's content is for the caller to parse. */
export interface BackupListing {
  orgId: string;
  backupId: string;
  /** ISO-8601 time the first artifact or document was written. */
  startedAt: string;
  /** `manifest.json` exists: by the architecture's rule, only then does the backup exist. */
  complete: boolean;
  /** `verification.json` exists. */
  verified: boolean;
  artifactCount: number;
  /** Sum of stored bytes of committed artifacts. */
  storedBytes: number;
  /** Unfinished writes (a crashed or running attempt). */
  temporaryFiles: number;
}

/** The top-level documents with a meaning to the architecture; backup-layout.ts owns every name. */
export { MANIFEST_FILE, VERIFICATION_FILE } from './backup-layout';

/**
 * Returns the record of an artifact a previous attempt already committed, if its stored bytes still
 * hash to what its sidecar (and, when given, `expectedSha256` from heartbeat details) says; otherwise
 * `undefined`, and the caller writes the artifact again (the commit replaces it).
 */
export async function findFinishedArtifact(
  store: BackupStore,
  ref: ArtifactRef,
  expectedSha256?: string,
): Promise<ArtifactRecord | undefined> {
  const stat = await store.statArtifact(ref);
  if (!stat.exists) return undefined;
  if (expectedSha256 !== undefined && expectedSha256 !== stat.sha256) return undefined;
  const verification = await store.verifyArtifactChecksum(ref, stat.sha256);
  if (!verification.matches) return undefined;
  const { exists: _exists, committedAt: _committedAt, ...record } = stat;
  return record;
}

/**
 * Streams `source` into a new artifact and commits it; aborts (leaving nothing) on any failure.
 * @throws the writer's classified failure (e.g. `DiskFull`) or the source's error.
 */
export async function writeArtifact(
  store: BackupStore,
  ref: ArtifactRef,
  source: Readable | AsyncIterable<Buffer | Uint8Array | string>,
  options: ArtifactWriteOptions,
): Promise<ArtifactRecord> {
  const writer = await store.openArtifactWriter(ref, options);
  try {
    await pipeline(source, writer.stream);
    return await writer.commit();
  } catch (err: unknown) {
    await writer.abort();
    throw err;
  }
}
