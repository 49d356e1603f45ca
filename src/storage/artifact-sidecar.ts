import { z } from 'zod';
import { FailureType, permanentFailure } from '../errors';
import { documentAuthenticationSchema, type DocumentAuthentication } from './backup-authentication';
import { describeArtifact } from './backup-layout';
import type { ArtifactRecord, ArtifactRef } from './backup-store';

/**
 * The sidecar `<artifact>.meta.json`: the artifact's {@link ArtifactRecord} and its commit marker.
 * An artifact exists only when its data and its sidecar both do. The format is the same on every
 * backend. Format 1 is unauthenticated; format 2 adds `authentication`, an HMAC over the rest bound
 * to the organization, backup and path (backup-authentication.ts), written whenever a key is configured.
 */
const sidecarFields = {
  path: z.string(),
  bytes: z.number().int().nonnegative(),
  rawBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  compression: z.enum(['gzip', 'none', 'zstd']),
  encrypted: z.boolean(),
  keyId: z.string().optional(),
  committedAt: z.string(),
};
const sidecarSchema = z.union([
  z.object({ formatVersion: z.literal(1), ...sidecarFields }),
  z.object({ formatVersion: z.literal(2), ...sidecarFields, authentication: documentAuthenticationSchema }),
]);
export type Sidecar = z.infer<typeof sidecarSchema>;

/** A sidecar without its authentication: what the MAC covers. */
export type UnsignedSidecar = Omit<Extract<Sidecar, { formatVersion: 2 }>, 'authentication'>;

/** The unsigned format-2 sidecar of `record`, committed now. */
export function unsignedSidecar(record: ArtifactRecord): UnsignedSidecar {
  return { formatVersion: 2, ...record, committedAt: new Date().toISOString() };
}

/**
 * The sidecar text of `record`: format 2 with `authentication` over `unsigned` when given, else
 * format 1, byte for byte as before authentication existed.
 */
export function formatSidecar(
  record: ArtifactRecord,
  signed?: { unsigned: UnsignedSidecar; authentication: DocumentAuthentication },
): string {
  const sidecar: Sidecar = signed
    ? { ...signed.unsigned, authentication: signed.authentication }
    : { formatVersion: 1, ...record, committedAt: new Date().toISOString() };
  return `${JSON.stringify(sidecar, null, 2)}\n`;
}

/** The part of a sidecar its MAC covers, and the MAC (absent in format 1). */
export function sidecarAuthentication(sidecar: Sidecar): {
  unsigned: unknown;
  authentication: DocumentAuthentication | undefined;
} {
  if (sidecar.formatVersion === 1) return { unsigned: sidecar, authentication: undefined };
  const { authentication, ...unsigned } = sidecar;
  return { unsigned, authentication };
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
  const { path, bytes, rawBytes, sha256, compression, encrypted, keyId } = sidecar;
  return { path, bytes, rawBytes, sha256, compression, encrypted, ...(keyId === undefined ? {} : { keyId }) };
}
