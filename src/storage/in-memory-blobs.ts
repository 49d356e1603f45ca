import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { blobKeySegments, type BlobStat, type BlobStore, type BlobUpload } from './blob-store';

/**
 * Blobs in a Map, for fast unit tests of everything above the blob layer (pipeline, sidecars, layout,
 * listing) and as the reference of the {@link BlobStore} contract. Unfinished uploads are listed as
 * `<key>#upload-<n>` until committed or aborted. Not for production: nothing survives the process.
 */
export class InMemoryBlobs implements BlobStore {
  readonly location = 'memory:';
  private readonly blobs = new Map<string, { content: Buffer; modifiedAt: string }>();
  private readonly uploads = new Map<string, Buffer[]>();
  private uploadCount = 0;

  async create(key: string): Promise<BlobUpload> {
    blobKeySegments(key, 'key');
    const id = `${key}#upload-${++this.uploadCount}`;
    const chunks: Buffer[] = [];
    this.uploads.set(id, chunks);
    const stream = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(Buffer.from(chunk));
        callback();
      },
    });
    const written = finished(stream);
    written.catch(() => undefined);
    return {
      stream,
      commit: async (): Promise<void> => {
        await written.catch((err: unknown) => {
          this.uploads.delete(id);
          throw err;
        });
        if (!this.uploads.delete(id)) throw new Error(`upload of ${key} was removed before its commit`);
        this.set(key, Buffer.concat(chunks));
      },
      abort: async (): Promise<void> => {
        stream.destroy();
        this.uploads.delete(id);
      },
    };
  }

  async put(key: string, content: string | Buffer): Promise<void> {
    blobKeySegments(key, 'key');
    this.set(key, Buffer.from(content));
  }

  async putIfAbsent(key: string, content: string | Buffer): Promise<boolean> {
    if (this.blobs.has(key)) return false;
    await this.put(key, content);
    return true;
  }

  async get(key: string): Promise<Readable | undefined> {
    const blob = this.blobs.get(key);
    return blob ? Readable.from([blob.content], { objectMode: false }) : undefined;
  }

  async stat(key: string): Promise<BlobStat | undefined> {
    const blob = this.blobs.get(key);
    return blob ? { bytes: blob.content.length, modifiedAt: blob.modifiedAt } : undefined;
  }

  async list(prefix: string): Promise<string[]> {
    blobKeySegments(prefix, 'prefix');
    return [...this.blobs.keys()].filter((key) => key.startsWith(prefix)).sort();
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    const names = new Set<string>();
    for (const key of await this.list(prefix)) {
      const rest = key.slice(prefix.length).split('/');
      if (rest.length > 1 && rest[0] !== undefined) names.add(rest[0]);
    }
    return [...names].sort();
  }

  async listUnfinished(prefix: string): Promise<string[]> {
    blobKeySegments(prefix, 'prefix');
    return [...this.uploads.keys()].filter((id) => id.startsWith(prefix)).sort();
  }

  async delete(key: string): Promise<boolean> {
    return this.blobs.delete(key) || this.uploads.delete(key);
  }

  async deletePrefix(prefix: string): Promise<boolean> {
    if (blobKeySegments(prefix, 'prefix').length === 0)
      throw new Error('refusing to delete every blob of the store (empty prefix)');
    let found = false;
    for (const map of [this.blobs, this.uploads]) {
      for (const key of [...map.keys()]) {
        if (key.startsWith(prefix)) found = map.delete(key) || found;
      }
    }
    return found;
  }

  /** Replaces the stored bytes of `key` as they are, bypassing every check: to simulate corruption in tests. */
  tamper(key: string, change: (content: Buffer) => Buffer): void {
    const blob = this.blobs.get(key);
    if (!blob) throw new Error(`no blob ${key} to tamper with`);
    this.blobs.set(key, { ...blob, content: change(Buffer.from(blob.content)) });
  }

  private set(key: string, content: Buffer): void {
    this.blobs.set(key, { content, modifiedAt: new Date().toISOString() });
  }
}
