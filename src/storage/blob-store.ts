import type { Readable, Writable } from 'node:stream';
import type { FailureContext } from '../errors';

/**
 * The small interface a backend implements: named blobs, each written once atomically from a stream.
 * Everything above it (the artifact pipeline, sidecars, manifests, listing, key names) is shared, so a
 * filesystem, an in-memory fake for unit tests, or an S3-compatible bucket (multipart upload as
 * {@link BlobUpload}, `CompleteMultipartUpload` as its commit) differ only here.
 *
 * Keys are `/`-separated relative names (`org_a/b1/postgres/schemas.dump`); a prefix ends with `/`.
 * The layout (backup-layout.ts) chooses them; implementations refuse empty, `.` and `..` segments.
 *
 * Errors: failures that no retry fixes (full disk, refused access) are thrown as non-retryable
 * ApplicationFailures naming `context`; anything else (a network hiccup, EIO) is thrown unchanged, so
 * the activity retries it. Absence is never an error: reads answer `undefined`, deletes `false`.
 */
export interface BlobStore {
  /** Human-readable location, for messages and logs (e.g. `filesystem:/var/backups`). */
  readonly location: string;

  /**
   * Starts writing `key`. Nothing is visible under `key` until {@link BlobUpload.commit} resolves, and
   * what was there stays readable until then; a writer that dies leaves at most an unfinished upload
   * ({@link BlobStore.listUnfinished}).
   */
  create(key: string, context: FailureContext): Promise<BlobUpload>;

  /** Writes a small blob whole, atomically and durably: readers see the old content or the new one. */
  put(key: string, content: string | Buffer, context: FailureContext): Promise<void>;

  /**
   * Like {@link BlobStore.put}, but only when `key` does not exist yet; with concurrent callers exactly
   * one succeeds. @returns whether this call wrote it.
   */
  putIfAbsent(key: string, content: string | Buffer, context: FailureContext): Promise<boolean>;

  /** The committed bytes of `key` as a stream, or `undefined` when there is no such blob. */
  get(key: string): Promise<Readable | undefined>;

  /** Size and time of the last commit of `key`, or `undefined`. Never reads the content. */
  stat(key: string): Promise<BlobStat | undefined>;

  /** Keys of every committed blob under `prefix`, at any depth, sorted. Unfinished uploads are not listed. */
  list(prefix: string): Promise<string[]>;

  /** Names of the immediate "folders" under `prefix` (`a/b/c` under `a/` gives `b`), sorted. */
  listPrefixes(prefix: string): Promise<string[]>;

  /** Keys of unfinished uploads under `prefix` (a crashed or still running writer), sorted; {@link BlobStore.delete} removes them. */
  listUnfinished(prefix: string): Promise<string[]>;

  /** Removes `key` (a blob or an unfinished upload) durably. @returns whether it existed. */
  delete(key: string, context: FailureContext): Promise<boolean>;

  /**
   * Removes every blob and unfinished upload under `prefix`. Idempotent, and resumes a removal that
   * was interrupted. @returns whether anything was there.
   */
  deletePrefix(prefix: string, context: FailureContext): Promise<boolean>;
}

/** A blob read whole with the tag of this content, so that a write can be made conditional on it. */
export interface TaggedBlob {
  content: Buffer;
  /** Entity tag of this content (S3's ETag); {@link VersionedBlobStore.putIfUnchanged} compares it. */
  etag: string;
}

/** One stored version of a blob key, as S3's ListObjectVersions reports it. */
export interface BlobVersion {
  /** S3's version id; `null` for the object of a bucket that never had versioning on. */
  versionId: string;
  /** A delete marker hides older versions without removing them. */
  isDeleteMarker: boolean;
  /** Whether this is the key's current version (what a plain read returns, or the marker that hides it). */
  isLatest: boolean;
}

/**
 * Blobs that several writers may change safely and whose every stored version can be removed: what
 * a document changed by more than one worker needs (compare-and-swap on the entity tag, S3's
 * `If-None-Match: *` / `If-Match`), and what destroying every copy of a secret needs on a versioned
 * bucket (ListObjectVersions, DeleteObject with a VersionId). S3Blobs implements it.
 */
export interface VersionedBlobStore extends BlobStore {
  /** The committed bytes of `key` and their entity tag, or `undefined` when there is no such blob. */
  getTagged(key: string): Promise<TaggedBlob | undefined>;

  /**
   * Writes `content` only when `key` is still at `expectedEtag` (`undefined`: only when it does not
   * exist); with concurrent callers at most one succeeds for one expected state.
   * @returns the new entity tag, or `undefined` when another writer changed the blob first (re-read, retry).
   */
  putIfUnchanged(
    key: string,
    content: string | Buffer,
    expectedEtag: string | undefined,
    context: FailureContext,
  ): Promise<string | undefined>;

  /** Every stored version of exactly `key` (delete markers included), or `[]` when it has none. */
  listVersions(key: string, context: FailureContext): Promise<BlobVersion[]>;

  /** Removes one stored version of `key` permanently (a version from {@link VersionedBlobStore.listVersions}). */
  deleteVersion(key: string, versionId: string, context: FailureContext): Promise<void>;
}

/** A blob being written: pipe its bytes into `stream`, then `commit()`, or `abort()`. */
export interface BlobUpload {
  /** Sink of the bytes. Store errors (e.g. `DiskFull`) destroy it with the classified failure. */
  readonly stream: Writable;
  /**
   * Waits until `stream` has finished and every byte is durable, then makes the blob visible under
   * its key atomically, replacing what was there. Call it only after `stream` has been ended.
   * @throws the failure that destroyed the stream, or a classified store failure.
   */
  commit(): Promise<void>;
  /** Discards the upload; nothing remains of it. Never throws. */
  abort(): Promise<void>;
}

export interface BlobStat {
  bytes: number;
  /** ISO-8601 time of the last commit. */
  modifiedAt: string;
}

/** A whole small blob as a Buffer, or `undefined` when absent (manifests, sidecars, markers). */
export async function readBlob(blobs: BlobStore, key: string): Promise<Buffer | undefined> {
  const stream = await blobs.get(key);
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * The segments of a blob key or prefix (without the trailing `/` of a prefix).
 * @throws Error on an empty, `.` or `..` segment or a `\` or NUL anywhere: the layout never makes
 *   one, so this is a programming error, not input.
 */
export function blobKeySegments(key: string, what: 'key' | 'prefix'): string[] {
  const body = what === 'prefix' ? (key.endsWith('/') ? key.slice(0, -1) : key) : key;
  if (what === 'prefix' && key !== '' && !key.endsWith('/'))
    throw new Error(`blob prefix ${JSON.stringify(key)} must end with "/"`);
  if (body === '') {
    if (what === 'prefix') return [];
    throw new Error('blob key is empty');
  }
  const segments = body.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..') || /[\\\0]/.test(body)) {
    throw new Error(`blob ${what} ${JSON.stringify(key)} has an empty, "." or ".." segment, a backslash or a NUL`);
  }
  return segments;
}
