import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { FailureType, permanentFailure } from '../errors';

/**
 * Encryption at rest: envelope encryption with AES-256-GCM.
 *
 * A 256-bit master key (BACKUP_MASTER_KEY) wraps one random 256-bit data key per organization
 * (see key-store.ts); artifacts are encrypted under the organization's data key in the framed
 * format below, which can be written and read as a stream without holding an artifact in memory.
 *
 * ```
 * header  "ELQENC" | version u8 (1) | algorithm u8 (1 = AES-256-GCM) | chunk size u32 BE
 *         | nonce prefix (8 random bytes) | key id length u8 | key id (ASCII)
 * chunks  ciphertext (chunk size bytes; the last one 0..chunk size) | GCM tag (16 bytes)
 * ```
 *
 * Each chunk's nonce is the file's random prefix followed by the chunk's counter (u32 BE), so nonces
 * never repeat within a file, and across files only with probability ~n²/2⁶⁵ for n files under one key.
 * Each chunk's additional data is the whole header plus a final flag (1 for the last chunk, 0 otherwise):
 * the header (key id, chunk size) cannot be altered, chunks cannot be reordered, and a file cut at a
 * chunk boundary or extended fails authentication instead of decrypting to a shorter or longer stream
 * (the "STREAM" construction). A plaintext that fills its last chunk is followed by an empty final chunk.
 *
 * Version 2 (written since artifacts are bound to their place) adds to each chunk's additional data
 * the artifact's binding, `<orgId>\0<backupId>\0<path>` (see {@link artifactBinding}): a file swapped
 * in from another backup or path of the same organization (same data key) fails authentication. Version
 * 1 files are read only where the caller allows unbound artifacts (backups written before version 2).
 */
export const ENCRYPTION_MAGIC = Buffer.from('ELQENC', 'ascii');
/** The version new artifacts are written in. */
export const ENCRYPTION_FORMAT_VERSION = 2;
/** The version before artifacts were bound to their backup and path. */
const UNBOUND_FORMAT_VERSION = 1;
const ALGORITHM_AES_256_GCM = 1;
/** Plaintext bytes per chunk. @default 65536 */
export const DEFAULT_ENCRYPTED_CHUNK_BYTES = 64 * 1024;
const TAG_BYTES = 16;
const NONCE_PREFIX_BYTES = 8;
const KEY_BYTES = 32;
const FIXED_HEADER_BYTES = ENCRYPTION_MAGIC.length + 1 + 1 + 4 + NONCE_PREFIX_BYTES + 1;
const MAX_CHUNKS = 2 ** 32;
const MIN_CHUNK_BYTES = 1024;
const MAX_CHUNK_BYTES = 16 * 1024 * 1024;

/** An organization's unwrapped data key. Never written anywhere unwrapped. */
export interface DataKey {
  orgId: string;
  /** Public id recorded in artifact headers, sidecars and the manifest (e.g. `dk_3f9a…`). */
  keyId: string;
  /** 32 bytes. */
  key: Buffer;
}

/** A data key wrapped (AES-256-GCM) by a master key, as stored in the key store. */
export interface WrappedKey {
  algorithm: 'aes-256-gcm';
  /** Id of the master key that wraps it (see {@link masterKeyId}). */
  masterKeyId: string;
  /** Base64 of the 12-byte IV, the 32-byte wrapped key and the 16-byte tag. */
  iv: string;
  ciphertext: string;
  tag: string;
}

/** The parsed header of an encrypted artifact. */
export interface EncryptionHeader {
  version: number;
  chunkBytes: number;
  noncePrefix: Buffer;
  keyId: string;
  /** Length of the header in bytes, i.e. where the first chunk starts. */
  headerBytes: number;
}

/**
 * Parses a base64 master key.
 * @param source where the key came from (`BACKUP_MASTER_KEY`, a file name), named in the error.
 * @throws ApplicationFailure `InvalidInput` unless it is base64 of exactly 32 bytes.
 */
export function parseMasterKey(base64: string, source: string): Buffer {
  const trimmed = base64.trim();
  const key = Buffer.from(trimmed, 'base64');
  if (!/^[A-Za-z0-9+/]+=*$/.test(trimmed) || key.length !== KEY_BYTES) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `${source} must be base64 of exactly 32 bytes (e.g. \`openssl rand -base64 32\`)`,
      { store: 'storage' },
    );
  }
  return key;
}

/**
 * A stable, public id of a master key: `mk_` + 16 hex digits of a domain-separated SHA-256 of the key.
 * Recorded with every wrapped data key so a wrong master key is named as such instead of failing a tag.
 */
export function masterKeyId(masterKey: Buffer): string {
  const digest = createHash('sha256').update('eloquent-recovery/master-key-id/v1\0').update(masterKey).digest('hex');
  return `mk_${digest.slice(0, 16)}`;
}

/** A new random data key id: `dk_` + 16 hex digits. */
export function newDataKeyId(): string {
  return `dk_${randomBytes(8).toString('hex')}`;
}

/** Binds a wrapped key to its organization and id: a wrapped key copied to another org does not unwrap. */
function wrapAad(orgId: string, keyId: string): Buffer {
  return Buffer.from(`eloquent-recovery/data-key/v1\0${orgId}\0${keyId}`, 'utf8');
}

/** Wraps a 32-byte data key under the master key (AES-256-GCM, random IV). */
export function wrapDataKey(masterKey: Buffer, dataKey: DataKey): WrappedKey {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', masterKey, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(wrapAad(dataKey.orgId, dataKey.keyId));
  const ciphertext = Buffer.concat([cipher.update(dataKey.key), cipher.final()]);
  return {
    algorithm: 'aes-256-gcm',
    masterKeyId: masterKeyId(masterKey),
    iv: iv.toString('base64'),
    ciphertext: ciphertext.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
  };
}

/**
 * Unwraps a data key.
 * @throws ApplicationFailure `DecryptionFailed` when the key was wrapped under another master key or
 *   the wrapped key was altered; the message names both master key ids.
 */
export function unwrapDataKey(masterKey: Buffer, orgId: string, keyId: string, wrapped: WrappedKey): DataKey {
  const configuredId = masterKeyId(masterKey);
  if (wrapped.masterKeyId !== configuredId) {
    throw permanentFailure(
      FailureType.DecryptionFailed,
      `data key ${keyId} is wrapped under master key ${wrapped.masterKeyId}, but the configured master key is ${configuredId}; configure the right BACKUP_MASTER_KEY or finish \`npm run keys -- rotate\``,
      { store: 'storage', orgId, object: keyId },
    );
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', masterKey, Buffer.from(wrapped.iv, 'base64'), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(wrapAad(orgId, keyId));
    decipher.setAuthTag(Buffer.from(wrapped.tag, 'base64'));
    const key = Buffer.concat([decipher.update(Buffer.from(wrapped.ciphertext, 'base64')), decipher.final()]);
    if (key.length !== KEY_BYTES) throw new Error(`unwrapped key has ${key.length} bytes`);
    return { orgId, keyId, key };
  } catch (err: unknown) {
    throw permanentFailure(
      FailureType.DecryptionFailed,
      `data key ${keyId} does not unwrap under master key ${configuredId}: the key store entry was altered`,
      { store: 'storage', orgId, object: keyId },
      err,
    );
  }
}

/** What binds an artifact's chunks to their place: the organization, backup and path. */
export function artifactBinding(ref: { orgId: string; backupId: string; path: string }): string {
  return `${ref.orgId}\0${ref.backupId}\0${ref.path}`;
}

/** The additional data of a chunk: the header, the final flag and, from version 2, the binding. */
function chunkAad(header: Buffer, version: number, binding: string, final: boolean): Buffer {
  const flag = Buffer.from([final ? 1 : 0]);
  if (version === UNBOUND_FORMAT_VERSION) return Buffer.concat([header, flag]);
  const bound = Buffer.from(binding, 'utf8');
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bound.length);
  return Buffer.concat([header, flag, length, bound]);
}

function encodeHeader(chunkBytes: number, noncePrefix: Buffer, keyId: string, version: number): Buffer {
  const id = Buffer.from(keyId, 'ascii');
  if (id.length === 0 || id.length > 255)
    throw new RangeError(`key id must be 1-255 ASCII characters, got ${id.length}`);
  const fixed = Buffer.alloc(FIXED_HEADER_BYTES);
  let offset = ENCRYPTION_MAGIC.copy(fixed, 0);
  offset = fixed.writeUInt8(version, offset);
  offset = fixed.writeUInt8(ALGORITHM_AES_256_GCM, offset);
  offset = fixed.writeUInt32BE(chunkBytes, offset);
  offset += noncePrefix.copy(fixed, offset);
  fixed.writeUInt8(id.length, offset);
  return Buffer.concat([fixed, id]);
}

/**
 * Parses the header at the start of `bytes`. Returns `undefined` when more bytes are needed.
 * @param artifact named in errors.
 * @throws ApplicationFailure `DecryptionFailed` when the bytes are not an encrypted artifact of a known version.
 */
export function parseEncryptionHeader(bytes: Buffer, artifact: string): EncryptionHeader | undefined {
  const fail = (why: string) =>
    permanentFailure(FailureType.DecryptionFailed, `artifact ${artifact} ${why}`, {
      store: 'storage',
      object: artifact,
    });
  const magicPart = bytes.subarray(0, ENCRYPTION_MAGIC.length);
  if (!magicPart.equals(ENCRYPTION_MAGIC.subarray(0, magicPart.length)))
    throw fail('is not an encrypted artifact (wrong magic bytes)');
  if (bytes.length < FIXED_HEADER_BYTES) return undefined;
  let offset = ENCRYPTION_MAGIC.length;
  const version = bytes.readUInt8(offset++);
  if (version !== ENCRYPTION_FORMAT_VERSION && version !== UNBOUND_FORMAT_VERSION)
    throw fail(
      `has encryption format version ${version}; this build reads versions ${UNBOUND_FORMAT_VERSION} and ${ENCRYPTION_FORMAT_VERSION}`,
    );
  const algorithm = bytes.readUInt8(offset++);
  if (algorithm !== ALGORITHM_AES_256_GCM) throw fail(`uses unknown algorithm ${algorithm}`);
  const chunkBytes = bytes.readUInt32BE(offset);
  offset += 4;
  if (chunkBytes < MIN_CHUNK_BYTES || chunkBytes > MAX_CHUNK_BYTES)
    throw fail(`has an implausible chunk size ${chunkBytes} (corrupted header)`);
  const noncePrefix = Buffer.from(bytes.subarray(offset, offset + NONCE_PREFIX_BYTES));
  offset += NONCE_PREFIX_BYTES;
  const idLength = bytes.readUInt8(offset++);
  if (idLength === 0) throw fail('has an empty key id (corrupted header)');
  if (bytes.length < offset + idLength) return undefined;
  const keyId = bytes.subarray(offset, offset + idLength).toString('ascii');
  return { version, chunkBytes, noncePrefix, keyId, headerBytes: offset + idLength };
}

function nonceFor(prefix: Buffer, counter: number): Buffer {
  const nonce = Buffer.alloc(12);
  prefix.copy(nonce, 0);
  nonce.writeUInt32BE(counter, NONCE_PREFIX_BYTES);
  return nonce;
}

/** Collects incoming buffers and hands out fixed-size pieces without re-copying on every write. */
class ChunkBuffer {
  private parts: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    this.parts.push(chunk);
    this.length += chunk.length;
  }

  /** Removes and returns pieces of `size` bytes while more than `size + keep` bytes are buffered. */
  takeWhileMoreThan(size: number, keep: number): Buffer[] {
    if (this.length <= size + keep) return [];
    const all = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.length);
    const pieces: Buffer[] = [];
    let offset = 0;
    while (all.length - offset > size + keep) {
      pieces.push(all.subarray(offset, offset + size));
      offset += size;
    }
    const rest = all.subarray(offset);
    this.parts = rest.length > 0 ? [rest] : [];
    this.length = rest.length;
    return pieces;
  }

  takeAll(): Buffer {
    const all = Buffer.concat(this.parts, this.length);
    this.parts = [];
    this.length = 0;
    return all;
  }
}

/**
 * A Transform that encrypts a stream under `dataKey` into the framed format, version 2 bound to
 * `binding` ({@link artifactBinding}) when given, else version 1 (unbound; kept for tests of old readers).
 * Memory: about one chunk plus what is in flight. Throws (destroys) only past 2³² chunks (256 TiB).
 */
export function createEncryptStream(
  dataKey: DataKey,
  chunkBytes: number = DEFAULT_ENCRYPTED_CHUNK_BYTES,
  binding?: string,
): Transform {
  const version = binding === undefined ? UNBOUND_FORMAT_VERSION : ENCRYPTION_FORMAT_VERSION;
  const header = encodeHeader(chunkBytes, randomBytes(NONCE_PREFIX_BYTES), dataKey.keyId, version);
  const noncePrefix = header.subarray(ENCRYPTION_MAGIC.length + 6, ENCRYPTION_MAGIC.length + 6 + NONCE_PREFIX_BYTES);
  const aad = [
    chunkAad(header, version, binding ?? '', false),
    chunkAad(header, version, binding ?? '', true),
  ] as const;
  const pending = new ChunkBuffer();
  let counter = 0;
  let headerSent = false;

  /** Seals one chunk into `out`; the caller pushes everything sealed in one call as one buffer. */
  const seal = (out: Buffer[], plaintext: Buffer, final: boolean): void => {
    if (counter >= MAX_CHUNKS) throw new RangeError('encrypted artifact exceeds 2^32 chunks');
    if (!headerSent) {
      out.push(header);
      headerSent = true;
    }
    const cipher = createCipheriv('aes-256-gcm', dataKey.key, nonceFor(noncePrefix, counter++), {
      authTagLength: TAG_BYTES,
    });
    cipher.setAAD(final ? aad[1] : aad[0]);
    out.push(cipher.update(plaintext));
    cipher.final();
    out.push(cipher.getAuthTag());
  };

  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        pending.push(chunk);
        // Keep at least one byte back: only at the end do we know which chunk is the final one.
        const out: Buffer[] = [];
        for (const piece of pending.takeWhileMoreThan(chunkBytes, 0)) seal(out, piece, false);
        // One buffer per input chunk: many 64 KiB + 16-byte pieces would cost a file write each.
        if (out.length > 0) this.push(Buffer.concat(out));
        callback();
      } catch (err: unknown) {
        callback(err instanceof Error ? err : new Error(String(err)));
      }
    },
    flush(callback: TransformCallback) {
      try {
        const out: Buffer[] = [];
        seal(out, pending.takeAll(), true);
        this.push(Buffer.concat(out));
        callback();
      } catch (err: unknown) {
        callback(err instanceof Error ? err : new Error(String(err)));
      }
    },
  });
}

/** Where a reader expects an artifact to belong; see {@link artifactBinding}. */
export interface ExpectedBinding {
  binding: string;
  /** Accept a version-1 (unbound) file: only for artifacts of backups written before version 2. */
  allowUnbound: boolean;
}

/**
 * A Transform that decrypts the framed format with `dataKey`, emitting a chunk only after its GCM tag
 * verified, and failing at the end when the final chunk is missing (truncation).
 * @param artifact named in errors (`org/backup/path`).
 * @param expected where the artifact must belong; without it only version-1 files are read.
 * Errors: ApplicationFailure `DecryptionFailed` naming the artifact and chunk — for a wrong key, a
 * flipped bit, a truncated or extended file, a file of another backup or path, an unbound file
 * where a bound one is required, or a header whose key id is not `dataKey.keyId`.
 */
export function createDecryptStream(dataKey: DataKey, artifact: string, expected?: ExpectedBinding): Transform {
  const pending = new ChunkBuffer();
  let header: EncryptionHeader | undefined;
  let aad: readonly [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];
  let counter = 0;
  const fail = (why: string, cause?: unknown) =>
    permanentFailure(
      FailureType.DecryptionFailed,
      `artifact ${artifact} ${why}`,
      { store: 'storage', orgId: dataKey.orgId, object: artifact },
      cause,
    );

  const open = (out: Buffer[], sealed: Buffer, final: boolean): void => {
    if (!header) throw fail('ends inside its header (truncated)');
    if (sealed.length < TAG_BYTES) throw fail(`ends inside chunk ${counter} (truncated)`);
    const decipher = createDecipheriv('aes-256-gcm', dataKey.key, nonceFor(header.noncePrefix, counter), {
      authTagLength: TAG_BYTES,
    });
    decipher.setAAD(final ? aad[1] : aad[0]);
    decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
    const plaintext = decipher.update(sealed.subarray(0, sealed.length - TAG_BYTES));
    try {
      decipher.final();
    } catch (err: unknown) {
      throw fail(
        final
          ? `failed authentication at chunk ${counter} (the last one): it is corrupted, truncated, extended, encrypted under another key, or belongs to another backup or path`
          : `failed authentication at chunk ${counter}: it is corrupted, encrypted under another key, or belongs to another backup or path`,
        err,
      );
    }
    counter++;
    out.push(plaintext);
  };

  const readHeader = (): boolean => {
    if (header) return true;
    const all = pending.takeAll();
    const parsed = parseEncryptionHeader(all, artifact);
    if (!parsed) {
      pending.push(all);
      return false;
    }
    if (parsed.keyId !== dataKey.keyId) throw fail(`is encrypted under data key ${parsed.keyId}, not ${dataKey.keyId}`);
    if (parsed.version === UNBOUND_FORMAT_VERSION && expected !== undefined && !expected.allowUnbound)
      throw fail(
        'is not bound to its backup and path (encryption format 1) although its metadata is of the authenticated format: it was swapped in',
      );
    if (parsed.version !== UNBOUND_FORMAT_VERSION && expected === undefined)
      throw fail('is bound to its backup and path, but was read without them');
    const headerBytes = all.subarray(0, parsed.headerBytes);
    const binding = expected?.binding ?? '';
    aad = [chunkAad(headerBytes, parsed.version, binding, false), chunkAad(headerBytes, parsed.version, binding, true)];
    header = parsed;
    const rest = all.subarray(parsed.headerBytes);
    if (rest.length > 0) pending.push(rest);
    return true;
  };

  return new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      try {
        pending.push(chunk);
        if (readHeader() && header) {
          // A sealed chunk is known not to be the last only when more bytes follow it.
          const out: Buffer[] = [];
          for (const sealed of pending.takeWhileMoreThan(header.chunkBytes + TAG_BYTES, 0)) open(out, sealed, false);
          if (out.length > 0) this.push(Buffer.concat(out));
        }
        callback();
      } catch (err: unknown) {
        callback(err instanceof Error ? err : new Error(String(err)));
      }
    },
    flush(callback: TransformCallback) {
      try {
        if (!readHeader()) throw fail('ends inside its header (truncated)');
        const out: Buffer[] = [];
        open(out, pending.takeAll(), true);
        this.push(Buffer.concat(out));
        callback();
      } catch (err: unknown) {
        callback(err instanceof Error ? err : new Error(String(err)));
      }
    },
  });
}
