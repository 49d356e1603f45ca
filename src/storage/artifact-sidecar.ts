import { z } from 'zod';
import { FailureType, permanentFailure } from '../errors';
import { describeArtifact } from './backup-layout';
import type { ArtifactRecord, ArtifactRef } from './backup-store';

/**
 * The sidecar `<artifact>.meta.json`: the artifact's {@link ArtifactRecord} and its commit marker.
 * An artifact exists only when its data and its sidecar both do. The format is the same on every
 * backend, and unchanged since format version 1.
 */
const sidecarSchema = z.object({
  formatVersion: z.literal(1),
  path: z.string(),
  bytes: z.number().int().nonnegative(),
  rawBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  compression: z.enum(['gzip', 'none', 'zstd']),
  encrypted: z.boolean(),
  keyId: z.string().optional(),
  committedAt: z.string(),
});
export type Sidecar = z.infer<typeof sidecarSchema>;

/** The sidecar text of `record`, committed now. */
export function formatSidecar(record: ArtifactRecord): string {
  const sidecar: Sidecar = { formatVersion: 1, ...record, committedAt: new Date().toISOString() };
  return `${JSON.stringify(sidecar, null, 2)}\n`;
}

/**
 * Parses the sidecar of `ref`.
 * @throws ApplicationFailure `ChecksumMismatch` when it is not a sidecar, or one of another artifact.
 */
export function parseSidecar(ref: ArtifactRef, content: Buffer): Sidecar {
  let parsed: unknown;
  try {
    parsed = JSON.parse(content.toString('utf8'));
  } catch {
    parsed = undefined;
  }
  const result = sidecarSchema.safeParse(parsed);
  if (!result.success || result.data.path !== ref.path) {
    throw permanentFailure(
      FailureType.ChecksumMismatch,
      `metadata of artifact ${describeArtifact(ref)} is corrupted or belongs to another artifact`,
      {
        store: 'storage',
        orgId: ref.orgId,
        object: describeArtifact(ref),
      },
    );
  }
  return result.data;
}

/** The record a sidecar holds. */
export function recordOf(sidecar: Sidecar): ArtifactRecord {
  const { formatVersion: _formatVersion, committedAt: _committedAt, ...record } = sidecar;
  return record;
}
