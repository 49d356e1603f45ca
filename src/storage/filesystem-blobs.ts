import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { errorCodes, type FailureContext } from '../errors';
import { blobKeySegments, type BlobStat, type BlobStore, type BlobUpload } from './blob-store';
import {
  classifyFilesystemError,
  fsyncDirectory,
  isTemporaryName,
  temporaryPathFor,
  writeFileAtomically,
} from './filesystem-io';

/** Read and write buffers: large enough that syscalls do not dominate, small enough to stream. */
const IO_CHUNK_BYTES = 1024 * 1024;

/**
 * Blobs as files under one directory: key `a/b/c` is the file `<directory>/a/b/c`.
 *
 * Commit protocol of a streamed blob: the bytes go to a hidden temporary file beside the target
 * (`.<name>.tmp-<random>`, on the same filesystem, so the rename is atomic), which is fsynced when the
 * stream ends; commit renames it over the target and fsyncs the folder. A crash at any point leaves
 * the previous blob or the new one, plus at most the temporary file, which {@link listUnfinished}
 * reports. Only files count as blobs; temporary files are never listed as blobs.
 */
export class FilesystemBlobs implements BlobStore {
  readonly location: string;
  /** Absolute root directory; created on first write. */
  readonly directory: string;

  constructor(directory: string) {
    this.directory = path.resolve(directory);
    this.location = `filesystem:${this.directory}`;
  }

  async create(key: string, context: FailureContext): Promise<BlobUpload> {
    const file = this.fileOf(key);
    const temporary = temporaryPathFor(file);
    let handle: FileHandle;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      handle = await open(temporary, 'wx', 0o600);
    } catch (err: unknown) {
      throw classifyFilesystemError(err, context);
    }
    const sink = new FileSink(handle, context);
    const written = finished(sink);
    // Observed by commit() or abort(); without this an early failure would be an unhandled rejection.
    written.catch(() => undefined);
    const removeTemporary = () => unlink(temporary).catch(() => undefined);
    return {
      stream: sink,
      commit: async (): Promise<void> => {
        try {
          await written;
          await rename(temporary, file);
          await fsyncDirectory(path.dirname(file));
        } catch (err: unknown) {
          await removeTemporary();
          throw classifyFilesystemError(err, context);
        }
      },
      abort: async (): Promise<void> => {
        sink.destroy();
        await written.catch(() => undefined);
        await removeTemporary();
      },
    };
  }

  async put(key: string, content: string | Buffer, context: FailureContext): Promise<void> {
    const file = this.fileOf(key);
    await mkdir(path.dirname(file), { recursive: true }).catch((err: unknown) =>
      Promise.reject(classifyFilesystemError(err, context)),
    );
    await writeFileAtomically(file, content, context);
  }

  /**
   * Exclusive create (`O_EXCL`), then the content. Not atomic on a crash while writing (the file may
   * be left short), which is why only the start marker, whose readers tolerate that, uses it.
   */
  async putIfAbsent(key: string, content: string | Buffer, context: FailureContext): Promise<boolean> {
    const file = this.fileOf(key);
    try {
      await mkdir(path.dirname(file), { recursive: true });
      const handle = await open(file, 'wx', 0o600);
      try {
        await handle.writeFile(content);
      } finally {
        await handle.close();
      }
      return true;
    } catch (err: unknown) {
      if (errorCodes(err).includes('EEXIST')) return false;
      throw classifyFilesystemError(err, context);
    }
  }

  async get(key: string): Promise<Readable | undefined> {
    const handle = await open(this.fileOf(key), 'r').catch((err: unknown) =>
      isNotFound(err) ? undefined : Promise.reject(err),
    );
    return handle?.createReadStream({ highWaterMark: IO_CHUNK_BYTES });
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    const info = await stat(this.fileOf(key)).catch((err: unknown) =>
      isNotFound(err) ? undefined : Promise.reject(err),
    );
    if (!info?.isFile()) return undefined;
    return { bytes: info.size, modifiedAt: info.mtime.toISOString() };
  }

  async list(prefix: string): Promise<string[]> {
    return (await this.walk(prefix)).filter((key) => !isTemporaryName(path.posix.basename(key)));
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    const entries = await readdir(this.dirOf(prefix), { withFileTypes: true }).catch((err: unknown) =>
      isNotFound(err) ? [] : Promise.reject(err),
    );
    return entries
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name)
      .sort();
  }

  async listUnfinished(prefix: string): Promise<string[]> {
    return (await this.walk(prefix)).filter((key) => isTemporaryName(path.posix.basename(key)));
  }

  async delete(key: string, context: FailureContext): Promise<boolean> {
    const file = this.fileOf(key);
    try {
      await unlink(file);
      await fsyncDirectory(path.dirname(file));
    } catch (err: unknown) {
      if (isNotFound(err)) return false;
      throw classifyFilesystemError(err, context);
    }
    return true;
  }

  /**
   * The folder is renamed to a hidden name first (`.<name>.deleting-<random>`, fsynced), so listings
   * never see it half-removed; leftovers of a removal that crashed after hiding are removed first.
   */
  async deletePrefix(prefix: string, context: FailureContext): Promise<boolean> {
    if (blobKeySegments(prefix, 'prefix').length === 0)
      throw new Error('refusing to delete every blob of the store (empty prefix)');
    const dir = this.dirOf(prefix);
    const parent = path.dirname(dir);
    const hiddenPrefix = `.${path.basename(dir)}.deleting-`;
    const leftovers = (await readdir(parent).catch(() => [] as string[])).filter((name) =>
      name.startsWith(hiddenPrefix),
    );
    for (const leftover of leftovers) await rm(path.join(parent, leftover), { recursive: true, force: true });
    const exists = await stat(dir).then(
      () => true,
      (err: unknown) => (isNotFound(err) ? false : Promise.reject(err)),
    );
    if (!exists) return false;
    try {
      const hidden = path.join(parent, `${hiddenPrefix}${randomBytes(4).toString('hex')}`);
      await rename(dir, hidden);
      await fsyncDirectory(parent);
      await rm(hidden, { recursive: true, force: true });
    } catch (err: unknown) {
      throw classifyFilesystemError(err, context);
    }
    return true;
  }

  private fileOf(key: string): string {
    return path.join(this.directory, ...blobKeySegments(key, 'key'));
  }

  private dirOf(prefix: string): string {
    return path.join(this.directory, ...blobKeySegments(prefix, 'prefix'));
  }

  /** Keys of every file under `prefix`, temporary ones included, sorted; `[]` when the folder does not exist. */
  private async walk(prefix: string): Promise<string[]> {
    const root = this.dirOf(prefix);
    const keys: string[] = [];
    const visit = async (relative: string): Promise<void> => {
      const entries = await readdir(path.join(root, relative), { withFileTypes: true }).catch((err: unknown) =>
        isNotFound(err) ? [] : Promise.reject(err),
      );
      for (const entry of entries) {
        const child = relative ? `${relative}/${entry.name}` : entry.name;
        if (entry.isDirectory()) await visit(child);
        else if (entry.isFile()) keys.push(`${prefix}${child}`);
      }
    };
    await visit('');
    return keys.sort();
  }
}

function isNotFound(err: unknown): boolean {
  return errorCodes(err).includes('ENOENT');
}

/** Writes to a file handle at increasing offsets, fsyncs when ended, closes when done. Errors are classified (ENOSPC → DiskFull). */
class FileSink extends Writable {
  private position = 0;

  constructor(
    private readonly handle: FileHandle,
    private readonly context: FailureContext,
  ) {
    super({ highWaterMark: IO_CHUNK_BYTES });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.settle(this.writeAll(chunk), callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.settle(this.writeAll(Buffer.concat(chunks.map((entry) => entry.chunk))), callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.settle(this.handle.sync(), callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.handle.close().then(
      () => callback(error),
      () => callback(error),
    );
  }

  private settle(work: Promise<void>, callback: (error?: Error | null) => void): void {
    work.then(
      () => callback(),
      (err: unknown) => callback(classifyFilesystemError(err, this.context)),
    );
  }

  private async writeAll(buffer: Buffer): Promise<void> {
    let offset = 0;
    while (offset < buffer.length) {
      const { bytesWritten } = await this.handle.write(buffer, offset, buffer.length - offset, this.position + offset);
      offset += bytesWritten;
    }
    this.position += buffer.length;
  }
}
