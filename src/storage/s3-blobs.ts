import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectVersionsCommand,
  paginateListObjectsV2,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import type { ApplicationFailure } from '@temporalio/common';
import { asError, FailureType, messageOf, permanentFailure, type FailureContext } from '../errors';
import {
  blobKeySegments,
  type BlobStat,
  type BlobUpload,
  type BlobVersion,
  type TaggedBlob,
  type VersionedBlobStore,
} from './blob-store';

/** S3's smallest part (every part but the last). */
const MIN_PART_BYTES = 5 * 1024 * 1024;
/** S3's most parts in one upload. */
const MAX_PARTS = 10_000;
/** Parts of one upload sent at the same time: enough to keep a link busy, each one held in memory. */
const PARTS_IN_FLIGHT = 2;
/** How long opening a connection to the endpoint may take. */
const CONNECTION_TIMEOUT_MS = 10_000;
/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;
/** The version id S3 gives the object of a bucket that never had versioning on. */
const NULL_VERSION = 'null';
/** Separates a key from the upload id in the names {@link S3Blobs.listUnfinished} gives; never in a layout key. */
const UPLOAD_SEPARATOR = '#upload-';

/** Error codes (S3's `Code`, the SDK's `name`) that no retry fixes: credentials, permissions, a missing bucket. */
const REJECTED_CODES = new Set([
  'AccessDenied',
  'AllAccessDisabled',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'NoSuchBucket',
  'InvalidBucketName',
  'AccountProblem',
  'InvalidObjectState',
]);
/** Codes that mean the object is larger than the server accepts, or the account is out of room. */
const FULL_CODES = new Set(['EntityTooLarge', 'QuotaExceeded', 'TooManyParts']);

export interface S3BlobsOptions {
  /** A client for the endpoint, built once per worker ({@link createS3Client}). */
  client: S3Client;
  bucket: string;
  /** Folder inside the bucket that holds everything (`backups/`); empty = the bucket's root. */
  prefix?: string;
  /**
   * Size of each part of a multipart upload, in bytes: one writer holds up to three parts (two
   * being sent, one filling). Parts double in size after every 1000, so 10,000 parts hold ~8 TB at the default.
   * @default 8 MiB (at least S3's 5 MiB)
   */
  partBytes?: number;
  /**
   * Whether the server honours `If-None-Match: *` on PUT (AWS S3 since 2024, gofakes3, MinIO,
   * Ceph RGW ≥ 19). When false, {@link S3Blobs.putIfAbsent} checks with HEAD then PUTs: two writers
   * racing on the same key may both "win" and the later one's content stays. The only caller, the
   * backup's start marker, tolerates that: both write the same backup's start time, moments apart.
   * @default true
   */
  conditionalPuts?: boolean;
}

/** Connection settings of an S3-compatible endpoint (config.ts `backup.s3`). */
export interface S3ConnectionSettings {
  /** URL of an S3-compatible server (`http://127.0.0.1:9510`); unset = AWS S3 of `region`. */
  endpoint: string | undefined;
  region: string;
  /** Path-style URLs (`<endpoint>/<bucket>/<key>`), which most S3-compatible servers need. */
  forcePathStyle: boolean;
  /** Static credentials; unset = the SDK's default chain. */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
}

/**
 * One S3 client for the worker. Credentials are the given ones (config.ts reads AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN), else the SDK's standard chain: AWS_PROFILE, web
 * identity (IRSA), container and instance roles.
 * Checksums are sent only where S3 requires them (DeleteObjects): the artifact pipeline hashes every
 * byte with SHA-256 itself, and verification reads them back, while the SDK's default trailing
 * checksums are not understood by every S3-compatible server.
 */
export function createS3Client(settings: S3ConnectionSettings): S3Client {
  return new S3Client({
    region: settings.region,
    forcePathStyle: settings.forcePathStyle,
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    ...(settings.credentials === undefined ? {} : { credentials: settings.credentials }),
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // An endpoint that drops packets fails fast (and is retried) instead of hanging an activity. No
    // socket idle timeout: a restore may pause reading a GET for minutes while pg_restore builds indexes.
    requestHandler: { connectionTimeout: CONNECTION_TIMEOUT_MS },
  });
}

/**
 * Blobs as objects of one S3 bucket under one prefix: key `a/b/c` is the object `<prefix>a/b/c`.
 *
 * Commit protocol of a streamed blob: a multipart upload is created when the blob is opened, each
 * part is sent as soon as it is full, and commit completes the upload, which S3 makes visible
 * atomically; until then the key shows what was there before. A failed or aborted upload is
 * aborted, so its parts are freed; a writer that dies leaves an unfinished multipart upload, which
 * {@link listUnfinished} reports as `<key>#upload-<uploadId>` and {@link delete} aborts. (A bucket
 * lifecycle rule `AbortIncompleteMultipartUpload` is a good second net in production.)
 *
 * Versioned buckets: delete removes the current version only, so older versions of a key stay
 * until the bucket's lifecycle expires them; {@link listVersions} and {@link deleteVersion} remove
 * them one by one where that matters (the data keys, blob-key-store.ts).
 */
export class S3Blobs implements VersionedBlobStore {
  readonly location: string;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly root: string;
  private readonly partBytes: number;
  private readonly conditionalPuts: boolean;
  /** Set once the server turned out to know no versions at all (gofakes3 on its bolt backend). */
  private versionless = false;

  constructor(options: S3BlobsOptions) {
    this.client = options.client;
    this.bucket = options.bucket;
    this.root = options.prefix ?? '';
    if (this.root !== '') blobKeySegments(this.root, 'prefix');
    this.partBytes = options.partBytes ?? 8 * 1024 * 1024;
    if (!Number.isInteger(this.partBytes) || this.partBytes < MIN_PART_BYTES) {
      throw new RangeError(
        `S3Blobs options.partBytes must be an integer of at least ${MIN_PART_BYTES} (S3's smallest part), got ${String(options.partBytes)}`,
      );
    }
    this.conditionalPuts = options.conditionalPuts ?? true;
    this.location = `s3://${this.bucket}/${this.root}`;
  }

  async create(key: string, context: FailureContext): Promise<BlobUpload> {
    const objectKey = this.objectKey(key);
    const created = await this.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey }))
      .catch((err: unknown) => Promise.reject(classifyS3Error(err, context)));
    const uploadId = created.UploadId;
    if (!uploadId) throw new Error(`${this.location}: CreateMultipartUpload of ${key} answered without an upload id`);
    const sink = new PartSink(
      this.client,
      { Bucket: this.bucket, Key: objectKey, UploadId: uploadId },
      this.partBytes,
      context,
    );
    const written = finished(sink);
    // Observed by commit() or abort(); without this an early failure would be an unhandled rejection.
    written.catch(() => undefined);
    const abortUpload = () =>
      this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId }))
        .then(
          () => undefined,
          () => undefined,
        );
    return {
      stream: sink,
      commit: async (): Promise<void> => {
        try {
          await written;
          if (sink.parts.length === 0) {
            // S3 completes no upload without parts, and gofakes3 refuses an empty one: an empty blob is one PUT.
            await this.client.send(
              new PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: Buffer.alloc(0) }),
            );
            await abortUpload();
            return;
          }
          await this.client.send(
            new CompleteMultipartUploadCommand({
              Bucket: this.bucket,
              Key: objectKey,
              UploadId: uploadId,
              MultipartUpload: { Parts: sink.parts },
            }),
          );
        } catch (err: unknown) {
          await abortUpload();
          throw classifyS3Error(err, context);
        }
      },
      abort: async (): Promise<void> => {
        sink.destroy();
        await written.catch(() => undefined);
        await abortUpload();
      },
    };
  }

  async put(key: string, content: string | Buffer, context: FailureContext): Promise<void> {
    await this.client
      .send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: Buffer.from(content) }))
      .catch((err: unknown) => Promise.reject(classifyS3Error(err, context)));
  }

  /** `If-None-Match: *` (S3 answers 412 when the key exists), or HEAD then PUT without {@link S3BlobsOptions.conditionalPuts}. */
  async putIfAbsent(key: string, content: string | Buffer, context: FailureContext): Promise<boolean> {
    const objectKey = this.objectKey(key);
    if (!this.conditionalPuts) {
      if (await this.stat(key)) return false;
      await this.put(key, content, context);
      return true;
    }
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: objectKey, Body: Buffer.from(content), IfNoneMatch: '*' }),
      );
      return true;
    } catch (err: unknown) {
      if (httpStatus(err) === 412) return false;
      throw classifyS3Error(err, context);
    }
  }

  async getTagged(key: string): Promise<TaggedBlob | undefined> {
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      if (!answer.Body || answer.ETag === undefined)
        throw new Error(`${this.location}: GetObject of ${key} answered without a body or an ETag`);
      return { content: Buffer.from(await answer.Body.transformToByteArray()), etag: answer.ETag };
    } catch (err: unknown) {
      if (isNotFound(err)) return undefined;
      throw classifyS3Error(err, this.contextOf(key));
    }
  }

  /**
   * `If-None-Match: *` or `If-Match: <etag>`: S3 answers 412 when the condition fails, and 409 when
   * a concurrent conditional write to the key is in progress; both mean "re-read and retry".
   * @throws ApplicationFailure `StoreRejected` when the store is configured without conditional PUTs
   *   (`S3_CONDITIONAL_PUTS=false`): a check then a write would let two workers both "win".
   */
  async putIfUnchanged(
    key: string,
    content: string | Buffer,
    expectedEtag: string | undefined,
    context: FailureContext,
  ): Promise<string | undefined> {
    if (!this.conditionalPuts) {
      throw permanentFailure(
        FailureType.StoreRejected,
        `a conditional write to ${this.location}${key} needs a server that honours If-None-Match and If-Match, and S3_CONDITIONAL_PUTS=false says this one does not`,
        context,
      );
    }
    try {
      const answer = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.objectKey(key),
          Body: Buffer.from(content),
          ...(expectedEtag === undefined ? { IfNoneMatch: '*' } : { IfMatch: expectedEtag }),
        }),
      );
      if (answer.ETag === undefined) throw new Error(`${this.location}: PutObject of ${key} answered without an ETag`);
      return answer.ETag;
    } catch (err: unknown) {
      const status = httpStatus(err);
      // 404: If-Match on a key deleted meanwhile (AWS answers NoSuchKey); gofakes3 answers 412.
      if (status === 412 || status === 409 || (expectedEtag !== undefined && isNotFound(err))) return undefined;
      throw classifyS3Error(err, context);
    }
  }

  /**
   * ListObjectVersions of exactly `key`, every page. A server that knows no versions at all
   * (gofakes3 on its bolt backend answers NotImplemented) is accepted only when the bucket reports
   * no versioning status: it then holds at most the current object, reported as version `null`
   * as S3 does on a bucket that never had versioning.
   * @throws ApplicationFailure `StoreRejected` when the bucket says versioning is on but its versions cannot be listed.
   */
  async listVersions(key: string, context: FailureContext): Promise<BlobVersion[]> {
    const objectKey = this.objectKey(key);
    if (!this.versionless) {
      try {
        return await this.listVersionsOf(objectKey);
      } catch (err: unknown) {
        if (errorName(err) !== 'NotImplemented' && httpStatus(err) !== 501) throw classifyS3Error(err, context);
      }
      const { Status: status } = await this.client
        .send(new GetBucketVersioningCommand({ Bucket: this.bucket }))
        .catch((err: unknown) => Promise.reject(classifyS3Error(err, context)));
      if (status !== undefined && String(status) !== '') {
        throw permanentFailure(
          FailureType.StoreRejected,
          `bucket ${this.bucket} reports versioning ${status} but the server cannot list the versions of ${objectKey}`,
          context,
        );
      }
      this.versionless = true;
    }
    return (await this.stat(key)) ? [{ versionId: NULL_VERSION, isDeleteMarker: false, isLatest: true }] : [];
  }

  async deleteVersion(key: string, versionId: string, context: FailureContext): Promise<void> {
    // A server without versions refuses a VersionId even for the `null` one: its plain delete is that.
    const version = this.versionless && versionId === NULL_VERSION ? {} : { VersionId: versionId };
    await this.client
      .send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), ...version }))
      .catch((err: unknown) => Promise.reject(classifyS3Error(err, context)));
  }

  async get(key: string): Promise<Readable | undefined> {
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      if (!(answer.Body instanceof Readable))
        throw new Error(`${this.location}: GetObject of ${key} answered without a Node.js stream`);
      return answer.Body;
    } catch (err: unknown) {
      if (isNotFound(err)) return undefined;
      throw classifyS3Error(err, this.contextOf(key));
    }
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { bytes: head.ContentLength ?? 0, modifiedAt: (head.LastModified ?? new Date(0)).toISOString() };
    } catch (err: unknown) {
      if (isNotFound(err)) return undefined;
      throw classifyS3Error(err, this.contextOf(key));
    }
  }

  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for await (const page of this.pages(prefix, undefined)) {
      for (const object of page.Contents ?? []) {
        // "Folder" placeholders (`a/`) that consoles make are not blobs.
        if (object.Key !== undefined && !object.Key.endsWith('/')) keys.push(object.Key.slice(this.root.length));
      }
    }
    return keys.sort();
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    const names: string[] = [];
    const start = this.root.length + prefix.length;
    for await (const page of this.pages(prefix, '/')) {
      for (const common of page.CommonPrefixes ?? []) {
        if (common.Prefix !== undefined) names.push(common.Prefix.slice(start, -1));
      }
    }
    return names.filter((name) => name !== '').sort();
  }

  async listUnfinished(prefix: string): Promise<string[]> {
    return (await this.unfinishedUploads(prefix))
      .map(({ key, uploadId }) => `${key}${UPLOAD_SEPARATOR}${uploadId}`)
      .sort();
  }

  async delete(key: string, context: FailureContext): Promise<boolean> {
    const at = key.indexOf(UPLOAD_SEPARATOR);
    if (at >= 0) return this.abortUnfinished(key.slice(0, at), key.slice(at + UPLOAD_SEPARATOR.length), context);
    // S3 answers 204 whether or not the key existed: HEAD first, to tell the caller.
    const existed = (await this.stat(key)) !== undefined;
    await this.client
      .send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }))
      .catch((err: unknown) => Promise.reject(classifyS3Error(err, context)));
    return existed;
  }

  /**
   * Lists then deletes in batches of 1000 (DeleteObjects), then aborts the unfinished uploads. A
   * removal that was interrupted is resumed by calling it again: whatever is left is listed anew.
   */
  async deletePrefix(prefix: string, context: FailureContext): Promise<boolean> {
    if (blobKeySegments(prefix, 'prefix').length === 0)
      throw new Error('refusing to delete every blob of the store (empty prefix)');
    const keys = await this.list(prefix);
    for (let start = 0; start < keys.length; start += DELETE_BATCH) {
      const batch = keys.slice(start, start + DELETE_BATCH);
      const answer = await this.client
        .send(
          new DeleteObjectsCommand({
            Bucket: this.bucket,
            Delete: { Objects: batch.map((key) => ({ Key: this.objectKey(key) })), Quiet: true },
          }),
        )
        .catch((err: unknown) => Promise.reject(classifyS3Error(err, context)));
      const [first, ...others] = answer.Errors ?? [];
      if (first) {
        const failure = Object.assign(new Error(`${first.Code ?? 'error'}: ${first.Message ?? ''}`), {
          name: first.Code ?? 'Error',
        });
        throw classifyS3Error(failure, {
          ...context,
          object: `${first.Key ?? prefix}${others.length > 0 ? ` and ${others.length} more` : ''}`,
        });
      }
    }
    const uploads = await this.unfinishedUploads(prefix);
    for (const { key, uploadId } of uploads) await this.abortUnfinished(key, uploadId, context);
    return keys.length > 0 || uploads.length > 0;
  }

  private async abortUnfinished(key: string, uploadId: string, context: FailureContext): Promise<boolean> {
    try {
      await this.client.send(
        new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.objectKey(key), UploadId: uploadId }),
      );
      return true;
    } catch (err: unknown) {
      if (errorName(err) === 'NoSuchUpload' || httpStatus(err) === 404) return false;
      throw classifyS3Error(err, context);
    }
  }

  /**
   * Unfinished multipart uploads under `prefix` (keys relative to the store), every page. Some
   * S3-compatible servers (gofakes3) answer a page with NoSuchUpload when the upload its marker
   * names completed meanwhile; the listing then starts again, a few times, since uploads come and go.
   */
  private async unfinishedUploads(prefix: string): Promise<Array<{ key: string; uploadId: string }>> {
    blobKeySegments(prefix, 'prefix');
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.unfinishedUploadsOnce(prefix);
      } catch (err: unknown) {
        if (errorName(err) !== 'NoSuchUpload' || attempt >= 5) throw classifyS3Error(err, this.contextOf(prefix));
      }
    }
  }

  private async unfinishedUploadsOnce(prefix: string): Promise<Array<{ key: string; uploadId: string }>> {
    const uploads: Array<{ key: string; uploadId: string }> = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(
        new ListMultipartUploadsCommand({
          Bucket: this.bucket,
          Prefix: this.root + prefix,
          KeyMarker: keyMarker,
          UploadIdMarker: uploadIdMarker,
        }),
      );
      for (const upload of page.Uploads ?? []) {
        if (upload.Key !== undefined && upload.UploadId !== undefined)
          uploads.push({ key: upload.Key.slice(this.root.length), uploadId: upload.UploadId });
      }
      if (!page.IsTruncated) return uploads;
      keyMarker = page.NextKeyMarker;
      uploadIdMarker = page.NextUploadIdMarker;
    }
  }

  private async listVersionsOf(objectKey: string): Promise<BlobVersion[]> {
    const versions: BlobVersion[] = [];
    let keyMarker: string | undefined;
    let versionIdMarker: string | undefined;
    for (;;) {
      const page = await this.client.send(
        new ListObjectVersionsCommand({
          Bucket: this.bucket,
          Prefix: objectKey,
          KeyMarker: keyMarker,
          VersionIdMarker: versionIdMarker,
        }),
      );
      const entries = [
        ...(page.Versions ?? []).map((entry) => ({ ...entry, isDeleteMarker: false })),
        ...(page.DeleteMarkers ?? []).map((entry) => ({ ...entry, isDeleteMarker: true })),
      ];
      // The prefix also matches longer keys (`keys.json.old`): only this key's versions count.
      for (const entry of entries) {
        if (entry.Key !== objectKey) continue;
        versions.push({
          versionId: entry.VersionId ?? NULL_VERSION,
          isDeleteMarker: entry.isDeleteMarker,
          isLatest: entry.IsLatest === true,
        });
      }
      if (!page.IsTruncated) return versions;
      keyMarker = page.NextKeyMarker;
      versionIdMarker = page.NextVersionIdMarker;
    }
  }

  private async *pages(prefix: string, delimiter: string | undefined) {
    blobKeySegments(prefix, 'prefix');
    const pages = paginateListObjectsV2(
      { client: this.client },
      { Bucket: this.bucket, Prefix: this.root + prefix, ...(delimiter ? { Delimiter: delimiter } : {}) },
    );
    try {
      for await (const page of pages) yield page;
    } catch (err: unknown) {
      throw classifyS3Error(err, this.contextOf(prefix));
    }
  }

  private objectKey(key: string): string {
    blobKeySegments(key, 'key');
    return this.root + key;
  }

  private contextOf(key: string): FailureContext {
    return { store: 'storage', object: `${this.location}${key}` };
  }
}

/**
 * Turns an S3 error into the failure the architecture asks for: refused credentials or access and a
 * missing bucket become `StoreRejected`, an object or account past its limits `DiskFull`, both
 * non-retryable and naming the object; anything else (5xx, SlowDown, a reset connection) is
 * returned unchanged so the activity retries it (after the SDK's own retries).
 */
export function classifyS3Error(err: unknown, context: FailureContext): Error | ApplicationFailure {
  const name = errorName(err);
  const status = httpStatus(err);
  if (REJECTED_CODES.has(name) || status === 403) {
    return permanentFailure(
      FailureType.StoreRejected,
      `the S3 store refused the request (${name}): ${messageOf(err)}`,
      context,
      err,
    );
  }
  if (FULL_CODES.has(name)) {
    return permanentFailure(
      FailureType.DiskFull,
      `the S3 store has no room for the object (${name}): ${messageOf(err)}`,
      context,
      err,
    );
  }
  return asError(err);
}

function errorName(err: unknown): string {
  if (err instanceof S3ServiceException) return err.name;
  return err instanceof Error ? err.name : '';
}

function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null || !('$metadata' in err)) return undefined;
  const metadata = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata;
  return typeof metadata?.httpStatusCode === 'number' ? metadata.httpStatusCode : undefined;
}

function isNotFound(err: unknown): boolean {
  const name = errorName(err);
  return name === 'NoSuchKey' || name === 'NotFound' || (httpStatus(err) === 404 && name !== 'NoSuchBucket');
}

/**
 * Collects bytes into parts and sends each one as soon as it is full, up to
 * {@link PARTS_IN_FLIGHT} at a time: a write whose part would exceed that waits for one to finish,
 * so a fast producer is held back instead of filling memory (at most `PARTS_IN_FLIGHT + 1` parts
 * are held). The last part is sent when the stream ends, which waits for every part.
 */
class PartSink extends Writable {
  private readonly sent: CompletedPart[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private partCount = 0;
  /** The first part that failed: every later write and the end report it. */
  private failure: unknown;

  constructor(
    private readonly client: S3Client,
    private readonly upload: { Bucket: string; Key: string; UploadId: string },
    private readonly basePartBytes: number,
    private readonly context: FailureContext,
  ) {
    super({ highWaterMark: 1024 * 1024 });
  }

  /** The parts sent, in ascending order as CompleteMultipartUpload wants them; complete once the stream has finished. */
  get parts(): CompletedPart[] {
    return [...this.sent].sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.buffered.push(chunk);
    this.bufferedBytes += chunk.length;
    if (this.bufferedBytes < this.currentPartBytes())
      return callback(this.failure === undefined ? null : asError(this.failure));
    this.settle(this.startPart(), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const finish = async (): Promise<void> => {
      if (this.bufferedBytes > 0) await this.startPart();
      await Promise.all(this.inFlight);
      if (this.failure !== undefined) throw this.failure;
    };
    this.settle(finish(), callback);
  }

  /** Doubles every 1000 parts, so an upload of unknown size fits in S3's 10,000 parts. */
  private currentPartBytes(): number {
    return this.basePartBytes * 2 ** Math.floor(this.partCount / 1000);
  }

  private async startPart(): Promise<void> {
    if (this.failure !== undefined) throw this.failure;
    const partNumber = ++this.partCount;
    if (partNumber > MAX_PARTS)
      throw permanentFailure(FailureType.DiskFull, `the blob needs more than ${MAX_PARTS} parts`, this.context);
    const body = Buffer.concat(this.buffered);
    this.buffered = [];
    this.bufferedBytes = 0;
    const sending = this.client
      .send(new UploadPartCommand({ ...this.upload, PartNumber: partNumber, Body: body, ContentLength: body.length }))
      .then(
        (answer) => {
          this.sent.push({ PartNumber: partNumber, ETag: answer.ETag });
        },
        (err: unknown) => {
          this.failure ??= err;
        },
      );
    this.inFlight.add(sending);
    void sending.finally(() => this.inFlight.delete(sending));
    if (this.inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure !== undefined) throw this.failure;
  }

  private settle(work: Promise<void>, callback: (error?: Error | null) => void): void {
    work.then(
      () => callback(),
      (err: unknown) => callback(classifyS3Error(err, this.context)),
    );
  }
}
