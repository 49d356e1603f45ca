import { createHash } from 'node:crypto';
import { PassThrough, Transform, type Readable, type TransformCallback, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { ApplicationFailure } from '@temporalio/common';
import { asError, errorCodes, FailureType, messageOf, permanentFailure, type FailureContext } from '../errors';
import type { ArtifactCompression, ArtifactRecord, ArtifactWriteOptions } from './backup-store';
import {
  createDecryptStream,
  createEncryptStream,
  DEFAULT_ENCRYPTED_CHUNK_BYTES,
  type DataKey,
  type ExpectedBinding,
} from './encryption';
import { createZstdStream } from './zstd-stream';

/**
 * The artifact pipeline: original bytes → count → gzip → encrypt → hash → wherever the bytes are
 * stored, and back. It knows nothing of the backend: it writes into any Writable and reads from any
 * Readable, so every blob store shares one format (sizes, SHA-256 of the stored bytes, encryption).
 */

/** Stream buffers: large enough that per-chunk costs do not dominate, small enough to stream. */
const IO_CHUNK_BYTES = 1024 * 1024;
/** zlib's output chunk; larger chunks do not make gzip faster. */
const GZIP_CHUNK_BYTES = 64 * 1024;

/** What the pipeline learnt of an artifact: the record without its path. */
export type EncodedArtifact = Omit<ArtifactRecord, 'path'>;

export interface EncodingOptions {
  /** gzip level 1-9. */
  gzipLevel: number;
  /** The organization's data key; `undefined` stores the bytes unencrypted. */
  dataKey: DataKey | undefined;
  /** The artifact's place (encryption.ts `artifactBinding`), bound into every encrypted chunk. */
  binding?: string;
}

/** An artifact being encoded into a destination. */
export interface ArtifactEncoder {
  /** Sink of the original bytes; an error of any stage or of the destination destroys it. */
  readonly input: Writable;
  /** Original bytes accepted and stored bytes passed on so far, for heartbeats. */
  progress(): { rawBytes: number; bytes: number };
  /**
   * Ends `input` if the caller has not, and resolves when every stored byte has reached the
   * destination and the destination has finished (for a blob upload: the bytes are durable).
   * @throws the first failure of any stage, the source's included.
   */
  finish(): Promise<EncodedArtifact>;
  /** Stops every stage and waits for them; never throws. */
  destroy(): Promise<void>;
}

/**
 * How `options` store an artifact: zstd when asked, else gzip unless the format is compressed
 * already; a gzip stream as it came.
 */
export function compressionFor(options: ArtifactWriteOptions): ArtifactCompression {
  if (options.compressWith === 'zstd' || options.zstdCompressed === true) return 'zstd';
  return options.gzipped === true || !options.alreadyCompressed ? 'gzip' : 'none';
}

/** Starts encoding into `destination`. Nothing flows until bytes are written into `input`. */
export function encodeArtifact(
  destination: Writable,
  write: ArtifactWriteOptions,
  options: EncodingOptions,
): ArtifactEncoder {
  const compression = compressionFor(write);
  let rawBytes = 0;
  const counter = new Transform({
    highWaterMark: IO_CHUNK_BYTES,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      rawBytes += chunk.length;
      callback(null, chunk);
    },
  });
  const meter = new StoredBytesMeter();
  const stages: Array<Transform | Writable> = [counter];
  if (compression === 'gzip' && write.gzipped !== true)
    stages.push(createGzip({ level: options.gzipLevel, chunkSize: GZIP_CHUNK_BYTES }));
  if (compression === 'zstd' && write.zstdCompressed !== true) stages.push(createZstdStream('compress'));
  if (options.dataKey)
    stages.push(createEncryptStream(options.dataKey, DEFAULT_ENCRYPTED_CHUNK_BYTES, options.binding));
  stages.push(meter, destination);
  const done = pipeline(stages);
  // Observed by finish() or destroy(); without this an early failure would be an unhandled rejection.
  done.catch(() => undefined);
  const { dataKey } = options;
  return {
    input: counter,
    progress: () => ({ rawBytes, bytes: meter.bytes }),
    finish: async (): Promise<EncodedArtifact> => {
      if (!counter.writableEnded && !counter.destroyed) counter.end();
      await done;
      return {
        bytes: meter.bytes,
        rawBytes,
        sha256: meter.digest(),
        compression,
        encrypted: dataKey !== undefined,
        ...(dataKey ? { keyId: dataKey.keyId } : {}),
      };
    },
    destroy: async (): Promise<void> => {
      counter.destroy();
      await done.catch(() => undefined);
    },
  };
}

/** What a reader must know of the stored bytes to check and decode them. */
export interface StoredForm {
  /** Stored size and lowercase hex SHA-256, as recorded at commit. */
  bytes: number;
  sha256: string;
  compression: ArtifactCompression;
  /** The key the artifact is encrypted under; `undefined` when it is not encrypted. */
  dataKey: DataKey | undefined;
  /** Where an encrypted artifact must belong; see encryption.ts {@link ExpectedBinding}. */
  binding?: ExpectedBinding;
  /**
   * False: the bytes are passed on still compressed (`compression` says how), for a consumer that
   * decompresses them in a process of its own. @default true
   */
  decompress?: boolean;
}

/**
 * The original bytes of a stored artifact. The stored bytes are hashed on the way and compared with
 * the record at their end; AES-GCM tags and the gzip CRC are checked by their stages. Every failure
 * destroys the returned stream with a non-retryable failure naming `name` (`ChecksumMismatch`,
 * `DecryptionFailed`); the stream never ends cleanly with wrong bytes.
 */
export function decodeArtifact(stored: Readable, form: StoredForm, name: string, context: FailureContext): Readable {
  const hash = createHash('sha256');
  let hashed = 0;
  const checker = new Transform({
    highWaterMark: IO_CHUNK_BYTES,
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      hash.update(chunk);
      hashed += chunk.length;
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      const actual = hash.digest('hex');
      if (hashed !== form.bytes || actual !== form.sha256) {
        callback(
          permanentFailure(
            FailureType.ChecksumMismatch,
            `artifact ${name} hashes to ${actual} (${hashed} bytes), but ${form.sha256} (${form.bytes} bytes) was recorded`,
            context,
          ),
        );
        return;
      }
      callback();
    },
  });
  const stages: Array<Readable | Transform> = [stored, checker];
  if (form.dataKey) stages.push(createDecryptStream(form.dataKey, name, form.binding));
  if (form.decompress !== false && form.compression === 'gzip') stages.push(createGunzip());
  if (form.decompress !== false && form.compression === 'zstd') stages.push(createZstdStream('decompress'));
  // The consumer's stream is the pipeline's destination so every stage's error reaches it; its
  // destroy hook turns raw zlib errors into failures that name the artifact.
  const output = new PassThrough({
    highWaterMark: IO_CHUNK_BYTES,
    destroy(err: Error | null, callback: (error?: Error | null) => void) {
      callback(err ? classifyReadError(err, name, context) : null);
    },
  });
  pipeline([...stages, output]).catch(() => undefined);
  return output;
}

/** Lowercase hex SHA-256 and size of everything `stored` yields: what `sha256sum` prints of the stored bytes. */
export async function hashStoredBytes(stored: Readable): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of stored) {
    const buffer = chunk as Buffer;
    hash.update(buffer);
    bytes += buffer.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/**
 * A failure while reading, named after the artifact: zlib and zstd errors mean the stored bytes are
 * not what was written (also when a consumer decompressed them itself with {@link createZstdStream}).
 */
export function classifyReadError(err: unknown, name: string, context: FailureContext): Error {
  if (err instanceof ApplicationFailure) return err;
  const codes = errorCodes(err);
  const zstd = codes.includes('ERR_ZSTD');
  if (zstd || codes.some((code) => code.startsWith('Z_') || code === 'ERR_ZLIB_INITIALIZATION_FAILED')) {
    return permanentFailure(
      FailureType.ChecksumMismatch,
      `artifact ${name} is not a valid ${zstd ? 'zstd' : 'gzip'} stream (corrupted or truncated): ${messageOf(err)}`,
      context,
      err,
    );
  }
  return asError(err);
}

/** Passes the stored bytes on, hashing and counting exactly those. */
class StoredBytesMeter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');

  constructor() {
    super({ highWaterMark: IO_CHUNK_BYTES });
  }

  digest(): string {
    return this.hash.copy().digest('hex');
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}
