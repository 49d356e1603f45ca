import { Transform, type TransformCallback } from 'node:stream';
import type { ManifestArtifact } from '../../contracts/backup';
import type { ArtifactRef, ArtifactWriteOptions, BackupStore } from '../../storage/backup-store';

/** Reports bytes passing through, for heartbeats. */
export class ProgressTap extends Transform {
  private total = 0;
  constructor(private readonly report: (bytes: number) => void) {
    super();
  }
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.total += chunk.length;
    this.report(this.total);
    done(null, chunk);
  }
}

/** Opens a writer, lets `fill` stream into it, commits; aborts on any failure so nothing half-written stays. */
export async function writeFromStream(
  store: BackupStore,
  ref: ArtifactRef,
  options: ArtifactWriteOptions,
  fill: (sink: NodeJS.WritableStream) => Promise<void>,
): Promise<Omit<ManifestArtifact, 'store' | 'object' | 'file' | 'rows' | 'columns'>> {
  const writer = await store.openArtifactWriter(ref, options);
  try {
    await fill(writer.stream);
    const { path: _path, ...record } = await writer.commit();
    return record;
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
