import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough, Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import { errorCodes, FailureType, messageOf, permanentFailure, type FailureContext } from '../errors';
import {
  artifactSegments,
  assertBackupRef,
  assertJsonDocumentName,
  assertSafeSegment,
  describeArtifact,
  MANIFEST_FILE,
  SIDECAR_SUFFIX,
  VERIFICATION_FILE,
  type ArtifactRecord,
  type ArtifactRef,
  type ArtifactStat,
  type ArtifactVerification,
  type ArtifactWriteOptions,
  type ArtifactWriter,
  type BackupListing,
  type BackupRef,
  type BackupStore,
} from './backup-store';
import { createDecryptStream, createEncryptStream, parseMasterKey } from './encryption';
import { asError, classifyFilesystemError, fsyncDirectory, isTemporaryName, temporaryPathFor, writeFileAtomically } from './filesystem-io';
import { FileKeyStore, type KeyStore } from './key-store';

/** Marker written when a backup's first file is opened: its start time, for listing newest first. */
const BACKUP_MARKER = '.backup.json';
/** Read and write buffers: large enough that syscalls do not dominate, small enough to stream. */
const IO_CHUNK_BYTES = 1024 * 1024;

const sidecarSchema = z.object({
  formatVersion: z.literal(1),
  path: z.string(),
  bytes: z.number().int().nonnegative(),
  rawBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  compression: z.enum(['gzip', 'none']),
  encrypted: z.boolean(),
  keyId: z.string().optional(),
  committedAt: z.string(),
});
type Sidecar = z.infer<typeof sidecarSchema>;

const markerSchema = z.object({ startedAt: z.string() });

export interface FilesystemBackupStoreOptions {
  /** Root directory; created on first write. */
  directory: string;
  /** Wraps and holds the organizations' data keys; encryption is on when it has a master key. */
  keyStore: KeyStore;
  /** gzip level 1-9 for formats that are not compressed already. @default 1 (fastest: backups race the raw tools) */
  gzipLevel?: number;
}

/**
 * The backup store on a local or mounted filesystem.
 *
 * Per artifact `<dir>/<org>/<backup>/<path>` there is a sidecar `<path>.meta.json` holding its
 * {@link ArtifactRecord}. The sidecar is the commit marker: an artifact exists only when both exist.
 * Commit order: data fsynced under a temporary name → old sidecar removed → data renamed into place →
 * sidecar written atomically → folder fsynced. A crash at any point leaves either the previous complete
 * artifact, no artifact, or a data file without sidecar (treated as absent and replaced by a retry).
 */
export class FilesystemBackupStore implements BackupStore {
  readonly location: string;
  private readonly directory: string;
  private readonly keyStore: KeyStore;
  private readonly gzipLevel: number;

  constructor(options: FilesystemBackupStoreOptions) {
    this.directory = path.resolve(options.directory);
    this.keyStore = options.keyStore;
    this.gzipLevel = options.gzipLevel ?? 1;
    if (!Number.isInteger(this.gzipLevel) || this.gzipLevel < 1 || this.gzipLevel > 9) {
      throw new RangeError(`FilesystemBackupStoreOptions.gzipLevel must be an integer 1-9, got ${String(options.gzipLevel)}`);
    }
    this.location = `filesystem:${this.directory}`;
  }

  get encryptsArtifacts(): boolean {
    return this.keyStore.masterKeyId !== undefined;
  }

  async openArtifactWriter(ref: ArtifactRef, options: ArtifactWriteOptions): Promise<ArtifactWriter> {
    const file = this.artifactFile(ref);
    const context: FailureContext = { store: 'storage', orgId: ref.orgId, object: describeArtifact(ref) };
    const dataKey = this.encryptsArtifacts ? await this.keyStore.getOrCreateDataKey(ref.orgId) : undefined;
    const compression = options.gzipped === true || !options.alreadyCompressed ? 'gzip' : 'none';
    await this.markBackupStarted(ref);
    const temporary = temporaryPathFor(file);
    let handle: FileHandle;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      handle = await open(temporary, 'wx', 0o600);
    } catch (err: unknown) {
      throw classifyFilesystemError(err, context);
    }

    let rawBytes = 0;
    const counter = new Transform({
      highWaterMark: IO_CHUNK_BYTES,
      transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
        rawBytes += chunk.length;
        callback(null, chunk);
      },
    });
    const sink = new HashingFileSink(handle, context);
    const stages: Array<Transform | Writable> = [counter];
    if (compression === 'gzip' && options.gzipped !== true) stages.push(createGzip({ level: this.gzipLevel, chunkSize: 64 * 1024 }));
    if (dataKey) stages.push(createEncryptStream(dataKey));
    stages.push(sink);
    const done = pipeline(stages).finally(() => handle.close().catch(() => undefined));
    // Observed by commit() or abort(); without this an early failure would be an unhandled rejection.
    done.catch(() => undefined);

    let state: 'open' | 'committed' | 'aborted' = 'open';
    const removeTemporary = () => unlink(temporary).catch(() => undefined);
    return {
      stream: counter,
      progress: () => ({ rawBytes, bytes: sink.bytes }),
      commit: async (): Promise<ArtifactRecord> => {
        if (state !== 'open') throw new Error(`artifact writer for ${describeArtifact(ref)} is already ${state}`);
        state = 'committed';
        if (!counter.writableEnded && !counter.destroyed) counter.end();
        try {
          await done;
        } catch (err: unknown) {
          await removeTemporary();
          throw err;
        }
        const record: ArtifactRecord = {
          path: ref.path,
          bytes: sink.bytes,
          rawBytes,
          sha256: sink.digest(),
          compression,
          encrypted: dataKey !== undefined,
          ...(dataKey ? { keyId: dataKey.keyId } : {}),
        };
        const sidecar: Sidecar = { formatVersion: 1, ...record, committedAt: new Date().toISOString() };
        try {
          // The sidecar marks the artifact committed: drop the old one before the data changes under it.
          await unlink(sidecarFile(file)).catch((err: unknown) => (errorCodes(err).includes('ENOENT') ? undefined : Promise.reject(err)));
          await rename(temporary, file);
          await writeFileAtomically(sidecarFile(file), `${JSON.stringify(sidecar, null, 2)}\n`, context);
        } catch (err: unknown) {
          await removeTemporary();
          throw classifyFilesystemError(err, context);
        }
        return record;
      },
      abort: async (): Promise<void> => {
        if (state !== 'open') return;
        state = 'aborted';
        counter.destroy();
        await done.catch(() => undefined);
        await removeTemporary();
      },
    };
  }

  async openArtifactReader(ref: ArtifactRef): Promise<Readable> {
    const file = this.artifactFile(ref);
    const name = describeArtifact(ref);
    const context: FailureContext = { store: 'storage', orgId: ref.orgId, object: name };
    const sidecar = await this.readSidecar(ref, file);
    if (!sidecar) throw permanentFailure(FailureType.UnknownBackup, `artifact ${name} does not exist (never written or never committed)`, context);
    const size = await stat(file).then(
      (s) => s.size,
      (err: unknown) => Promise.reject(errorCodes(err).includes('ENOENT') ? permanentFailure(FailureType.UnknownBackup, `artifact ${name} has metadata but no data file`, context) : err),
    );
    if (size !== sidecar.bytes) {
      throw permanentFailure(FailureType.ChecksumMismatch, `artifact ${name} has ${size} stored bytes but ${sidecar.bytes} were written (truncated or altered)`, context);
    }
    // Keys are resolved before any byte flows, so a missing or wrong key fails here, clearly.
    const dataKey = sidecar.encrypted ? await this.keyStore.getDataKey(ref.orgId, sidecar.keyId ?? '(none recorded)') : undefined;

    const source = createReadStream(file, { highWaterMark: IO_CHUNK_BYTES });
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
        if (hashed !== sidecar.bytes || actual !== sidecar.sha256) {
          callback(permanentFailure(FailureType.ChecksumMismatch, `artifact ${name} hashes to ${actual} (${hashed} bytes), but ${sidecar.sha256} (${sidecar.bytes} bytes) was recorded`, context));
          return;
        }
        callback();
      },
    });
    const stages: Array<Readable | Transform> = [source, checker];
    if (dataKey) stages.push(createDecryptStream(dataKey, name));
    if (sidecar.compression === 'gzip') stages.push(createGunzip());
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

  async statArtifact(ref: ArtifactRef): Promise<ArtifactStat> {
    const file = this.artifactFile(ref);
    const sidecar = await this.readSidecar(ref, file);
    if (!sidecar) return { exists: false };
    const present = await stat(file).then(
      () => true,
      (err: unknown) => (errorCodes(err).includes('ENOENT') ? false : Promise.reject(err)),
    );
    if (!present) return { exists: false };
    const { formatVersion: _formatVersion, ...record } = sidecar;
    return { exists: true, ...record };
  }

  async verifyArtifactChecksum(ref: ArtifactRef, expectedSha256: string): Promise<ArtifactVerification> {
    const file = this.artifactFile(ref);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of createReadStream(file, { highWaterMark: IO_CHUNK_BYTES })) {
        const buffer = chunk as Buffer;
        hash.update(buffer);
        bytes += buffer.length;
      }
    } catch (err: unknown) {
      if (errorCodes(err).includes('ENOENT')) return { exists: false, matches: false, expectedSha256, bytes: 0 };
      throw err;
    }
    const actualSha256 = hash.digest('hex');
    return { exists: true, matches: actualSha256 === expectedSha256.toLowerCase(), expectedSha256, actualSha256, bytes };
  }

  async listArtifacts(backup: BackupRef): Promise<ArtifactRecord[]> {
    assertBackupRef(backup);
    const records: ArtifactRecord[] = [];
    for (const relative of await walkFiles(this.backupDir(backup))) {
      if (!relative.endsWith(SIDECAR_SUFFIX) || !relative.includes('/')) continue;
      const stat = await this.statArtifact({ ...backup, path: relative.slice(0, -SIDECAR_SUFFIX.length) });
      if (stat.exists) {
        const { exists: _exists, committedAt: _committedAt, ...record } = stat;
        records.push(record);
      }
    }
    return records.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async writeJson(backup: BackupRef, name: string, value: unknown): Promise<void> {
    assertJsonDocumentName(backup, name);
    const text = JSON.stringify(value, null, 2);
    if (text === undefined) throw permanentFailure(FailureType.InvalidInput, `document ${name} has no JSON representation`, { store: 'storage', orgId: backup.orgId, object: name });
    const dir = this.backupDir(backup);
    const context: FailureContext = { store: 'storage', orgId: backup.orgId, object: `${backup.orgId}/${backup.backupId}/${name}` };
    await this.markBackupStarted(backup);
    await mkdir(dir, { recursive: true }).catch((err: unknown) => Promise.reject(classifyFilesystemError(err, context)));
    await writeFileAtomically(path.join(dir, name), `${text}\n`, context);
  }

  async readJson(backup: BackupRef, name: string): Promise<unknown> {
    assertJsonDocumentName(backup, name);
    const file = path.join(this.backupDir(backup), name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err: unknown) {
      if (errorCodes(err).includes('ENOENT')) return undefined;
      throw err;
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (err: unknown) {
      throw permanentFailure(FailureType.ChecksumMismatch, `document ${name} is not valid JSON (corrupted)`, { store: 'storage', orgId: backup.orgId, object: `${backup.orgId}/${backup.backupId}/${name}` }, err);
    }
  }

  async deleteJson(backup: BackupRef, name: string): Promise<{ deleted: boolean }> {
    assertJsonDocumentName(backup, name);
    const context: FailureContext = { store: 'storage', orgId: backup.orgId, object: `${backup.orgId}/${backup.backupId}/${name}` };
    if (name === MANIFEST_FILE) throw permanentFailure(FailureType.InvalidInput, 'the manifest is removed only with its whole backup (deleteBackup)', context);
    try {
      await unlink(path.join(this.backupDir(backup), name));
    } catch (err: unknown) {
      if (errorCodes(err).includes('ENOENT')) return { deleted: false };
      throw classifyFilesystemError(err, context);
    }
    await fsyncDirectory(this.backupDir(backup));
    return { deleted: true };
  }

  async listBackups(orgId: string): Promise<BackupListing[]> {
    assertSafeSegment('organization id', orgId);
    const orgDir = path.join(this.directory, orgId);
    const entries = await readdir(orgDir, { withFileTypes: true }).catch((err: unknown) => (errorCodes(err).includes('ENOENT') ? [] : Promise.reject(err)));
    const listings: BackupListing[] = [];
    for (const entry of entries) {
      if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
      const backup: BackupRef = { orgId, backupId: entry.name };
      const dir = path.join(orgDir, entry.name);
      const files = await walkFiles(dir);
      const artifacts = await this.listArtifacts(backup);
      listings.push({
        orgId,
        backupId: entry.name,
        startedAt: await this.backupStartedAt(dir),
        complete: files.includes(MANIFEST_FILE),
        verified: files.includes(VERIFICATION_FILE),
        artifactCount: artifacts.length,
        storedBytes: artifacts.reduce((sum, artifact) => sum + artifact.bytes, 0),
        temporaryFiles: files.filter((file) => isTemporaryName(path.posix.basename(file))).length,
      });
    }
    return listings.sort((a, b) => (a.startedAt !== b.startedAt ? (a.startedAt < b.startedAt ? 1 : -1) : a.backupId < b.backupId ? 1 : a.backupId > b.backupId ? -1 : 0));
  }

  async listOrganizations(): Promise<string[]> {
    const entries = await readdir(this.directory, { withFileTypes: true }).catch((err: unknown) => (errorCodes(err).includes('ENOENT') ? [] : Promise.reject(err)));
    return entries
      .filter((entry) => entry.isDirectory() && /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/.test(entry.name))
      .map((entry) => entry.name)
      .sort();
  }

  async deleteBackup(backup: BackupRef): Promise<{ deleted: boolean }> {
    assertBackupRef(backup);
    const orgDir = path.join(this.directory, backup.orgId);
    const dir = this.backupDir(backup);
    const context: FailureContext = { store: 'storage', orgId: backup.orgId, object: `${backup.orgId}/${backup.backupId}` };
    // Leftovers of an earlier deletion that crashed after hiding the folder.
    const leftovers = (await readdir(orgDir).catch(() => [] as string[])).filter((name) => name.startsWith(`.${backup.backupId}.deleting-`));
    for (const leftover of leftovers) await rm(path.join(orgDir, leftover), { recursive: true, force: true });
    const exists = await stat(dir).then(
      () => true,
      (err: unknown) => (errorCodes(err).includes('ENOENT') ? false : Promise.reject(err)),
    );
    if (!exists) return { deleted: false };
    try {
      // The manifest goes first and durably: from here on the backup is incomplete, never "complete but partial".
      await unlink(path.join(dir, MANIFEST_FILE)).catch((err: unknown) => (errorCodes(err).includes('ENOENT') ? undefined : Promise.reject(err)));
      await fsyncDirectory(dir);
      const hidden = path.join(orgDir, `.${backup.backupId}.deleting-${randomBytes(4).toString('hex')}`);
      await rename(dir, hidden);
      await fsyncDirectory(orgDir);
      await rm(hidden, { recursive: true, force: true });
    } catch (err: unknown) {
      throw classifyFilesystemError(err, context);
    }
    return { deleted: true };
  }

  async removeTemporaryFiles(backup: BackupRef): Promise<string[]> {
    assertBackupRef(backup);
    const dir = this.backupDir(backup);
    const removed: string[] = [];
    for (const relative of await walkFiles(dir)) {
      if (!isTemporaryName(path.posix.basename(relative))) continue;
      await unlink(path.join(dir, relative)).catch((err: unknown) => (errorCodes(err).includes('ENOENT') ? undefined : Promise.reject(err)));
      removed.push(relative);
    }
    return removed;
  }

  private backupDir(backup: BackupRef): string {
    assertBackupRef(backup);
    return path.join(this.directory, backup.orgId, backup.backupId);
  }

  private artifactFile(ref: ArtifactRef): string {
    return path.join(this.backupDir(ref), ...artifactSegments(ref));
  }

  private async readSidecar(ref: ArtifactRef, file: string): Promise<Sidecar | undefined> {
    let text: string;
    try {
      text = await readFile(sidecarFile(file), 'utf8');
    } catch (err: unknown) {
      if (errorCodes(err).includes('ENOENT')) return undefined;
      throw err;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    const result = sidecarSchema.safeParse(parsed);
    if (!result.success || result.data.path !== ref.path) {
      throw permanentFailure(FailureType.ChecksumMismatch, `metadata of artifact ${describeArtifact(ref)} is corrupted or belongs to another artifact`, {
        store: 'storage',
        orgId: ref.orgId,
        object: describeArtifact(ref),
      });
    }
    return result.data;
  }

  /** Records when the backup started, once; listing sorts on it. */
  private async markBackupStarted(backup: BackupRef): Promise<void> {
    const dir = this.backupDir(backup);
    const context: FailureContext = { store: 'storage', orgId: backup.orgId, object: `${backup.orgId}/${backup.backupId}` };
    try {
      await mkdir(dir, { recursive: true });
      const handle = await open(path.join(dir, BACKUP_MARKER), 'wx', 0o600);
      try {
        await handle.writeFile(`${JSON.stringify({ orgId: backup.orgId, backupId: backup.backupId, startedAt: new Date().toISOString() })}\n`);
      } finally {
        await handle.close();
      }
    } catch (err: unknown) {
      if (errorCodes(err).includes('EEXIST')) return;
      throw classifyFilesystemError(err, context);
    }
  }

  private async backupStartedAt(dir: string): Promise<string> {
    try {
      const parsed = markerSchema.safeParse(JSON.parse(await readFile(path.join(dir, BACKUP_MARKER), 'utf8')));
      if (parsed.success) return parsed.data.startedAt;
    } catch {
      // No marker (a folder made by hand, or a crash while writing it): fall back to the folder's time.
    }
    const info = await stat(dir);
    return (info.birthtimeMs > 0 ? info.birthtime : info.mtime).toISOString();
  }
}

/**
 * The filesystem backup store of the configuration: `config.backup.directory`, with encryption when
 * `config.backup.masterKeyBase64` is set. Keys live in `<directory>/<orgId>/keys.json` (see key-store.ts).
 * @throws ApplicationFailure `InvalidInput` when the master key is not base64 of 32 bytes.
 */
export function createFilesystemBackupStore(backup: { directory: string; masterKeyBase64: string | undefined }, gzipLevel?: number): FilesystemBackupStore {
  const masterKey = backup.masterKeyBase64 === undefined ? undefined : parseMasterKey(backup.masterKeyBase64, 'BACKUP_MASTER_KEY');
  const keyStore = new FileKeyStore({ directory: backup.directory, masterKey });
  return new FilesystemBackupStore({ directory: backup.directory, keyStore, ...(gzipLevel === undefined ? {} : { gzipLevel }) });
}

function sidecarFile(file: string): string {
  return `${file}${SIDECAR_SUFFIX}`;
}

/** A failure while reading, named after the artifact: zlib errors mean the stored bytes are not what was written. */
function classifyReadError(err: unknown, name: string, context: FailureContext): Error {
  if (err instanceof ApplicationFailure) return err;
  const codes = errorCodes(err);
  if (codes.some((code) => code.startsWith('Z_') || code === 'ERR_ZLIB_INITIALIZATION_FAILED')) {
    return permanentFailure(FailureType.ChecksumMismatch, `artifact ${name} is not a valid gzip stream (corrupted or truncated): ${messageOf(err)}`, context, err);
  }
  return asError(err);
}

/** Every file under `dir`, as `/`-separated paths relative to it, sorted; `[]` when `dir` does not exist. */
async function walkFiles(dir: string): Promise<string[]> {
  const files: string[] = [];
  const visit = async (relative: string): Promise<void> => {
    const entries = await readdir(path.join(dir, relative), { withFileTypes: true }).catch((err: unknown) => (errorCodes(err).includes('ENOENT') ? [] : Promise.reject(err)));
    for (const entry of entries) {
      const child = relative ? `${relative}/${entry.name}` : entry.name;
      if (entry.isDirectory()) await visit(child);
      else if (entry.isFile()) files.push(child);
    }
  };
  await visit('');
  return files.sort();
}

/** Writes to a file handle, hashing exactly the bytes that reach the file. Errors are classified (ENOSPC → DiskFull). */
class HashingFileSink extends Writable {
  bytes = 0;
  private readonly hash = createHash('sha256');

  constructor(
    private readonly handle: FileHandle,
    private readonly context: FailureContext,
  ) {
    super({ highWaterMark: IO_CHUNK_BYTES });
  }

  digest(): string {
    return this.hash.copy().digest('hex');
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll(chunk).then(
      () => callback(),
      (err: unknown) => callback(classifyFilesystemError(err, this.context)),
    );
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(Buffer.concat(chunks.map((entry) => entry.chunk))).then(
      () => callback(),
      (err: unknown) => callback(classifyFilesystemError(err, this.context)),
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.handle.sync().then(
      () => callback(),
      (err: unknown) => callback(classifyFilesystemError(err, this.context)),
    );
  }

  private async writeAll(buffer: Buffer): Promise<void> {
    let offset = 0;
    while (offset < buffer.length) {
      const { bytesWritten } = await this.handle.write(buffer, offset, buffer.length - offset, this.bytes + offset);
      offset += bytesWritten;
    }
    this.hash.update(buffer);
    this.bytes += buffer.length;
  }
}
