import { FailureType, permanentFailure } from '../errors';
import type { ArtifactRef, BackupRef } from './backup-store';

/**
 * Every key name of the backup store, and nothing else: the one place that turns an organization,
 * a backup and an artifact into a blob key, whatever the blobs are stored on.
 *
 * ```
 * <orgId>/keys.json                            the organization's wrapped data keys (key-store.ts)
 * <orgId>/<backupId>/.backup.json              start marker, written once when the backup's first blob is
 * <orgId>/<backupId>/<store>/<file>            artifact, e.g. postgres/schemas.dump, clickhouse/kg_nodes.native
 * <orgId>/<backupId>/<store>/<file>.meta.json  its sidecar: the record, and the artifact's commit marker
 * <orgId>/<backupId>/manifest.json             written last: only then does the backup exist
 * <orgId>/<backupId>/verification.json         written by verification; other `*.json` documents beside it
 * _platform/<backupId>/…                       platform-wide backups (roles, globals), same shape
 * _deletions/<orgId>/deletion-log.json         deletion certificates, outside any organization's folder
 * ```
 *
 * Keys are `/`-separated. Every segment is checked here, so no key can leave its organization's
 * folder, hide itself, or look like a temporary name or an option.
 */

/** The backup exists only when this document does (the architecture's rule). */
export const MANIFEST_FILE = 'manifest.json';
/** Written by verification beside the manifest. */
export const VERIFICATION_FILE = 'verification.json';
/** Suffix of the per-artifact metadata file; artifact names may not end with it. */
export const SIDECAR_SUFFIX = '.meta.json';
/** Marker written when a backup's first blob is opened: its start time, for listing newest first. */
export const BACKUP_MARKER = '.backup.json';
/** File name of an organization's wrapped keys, in its folder beside its backups. */
export const KEYS_FILE = 'keys.json';
/**
 * Namespaces in the place of an organization id. They start with `_`, which no organization id can,
 * so they never collide with an organization's backups, and pruning skips them.
 * `src/activities` still spells them out (`PLATFORM_BACKUP_ORG`, `DELETION_LOG_ROOT`) while it is moved.
 */
export const PLATFORM_NAMESPACE = '_platform';
export const DELETIONS_NAMESPACE = '_deletions';

/** Letters, digits, `_`, `.`, `-`; starts with a letter, digit or `_` (so never `.`, `..`, a hidden or temp name, or an option). */
const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$/;
const MAX_ARTIFACT_DEPTH = 6;

function invalidSegment(what: string, value: string, segment: string, orgId: string | undefined): never {
  throw permanentFailure(
    FailureType.InvalidInput,
    `${what} ${JSON.stringify(value)} has an unsafe segment ${JSON.stringify(segment)}: expected 1-200 letters, digits, "_", "." or "-", not starting with "." or "-"`,
    { store: 'storage', orgId, object: value },
  );
}

/** True when `name` may be a folder or file name of the layout (organization id, backup id, segment). */
export function isSafeSegment(name: string): boolean {
  return SAFE_SEGMENT.test(name);
}

/**
 * Checks one path segment (organization id, backup id, file name).
 * @throws ApplicationFailure `InvalidInput` naming the segment.
 */
export function assertSafeSegment(what: string, value: string, orgId?: string): void {
  if (!SAFE_SEGMENT.test(value)) invalidSegment(what, value, value, orgId);
}

/**
 * Validates a backup reference (both ids are single safe segments).
 * @throws ApplicationFailure `InvalidInput` naming the bad id.
 */
export function assertBackupRef(backup: BackupRef): void {
  assertSafeSegment('organization id', backup.orgId);
  assertSafeSegment('backup id', backup.backupId, backup.orgId);
}

/**
 * Validates an artifact reference and returns the segments of its path. The path must have at least
 * two segments (`<store>/<file>`), so artifacts never collide with top-level documents, no segment may
 * be `.`, `..`, empty, absolute or hidden, and the file name may not end with {@link SIDECAR_SUFFIX}.
 * @throws ApplicationFailure `InvalidInput` naming the bad segment.
 */
export function artifactSegments(ref: ArtifactRef): string[] {
  assertBackupRef(ref);
  const segments = ref.path.split('/');
  if (segments.length < 2 || segments.length > MAX_ARTIFACT_DEPTH) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `artifact path ${JSON.stringify(ref.path)} must have 2 to ${MAX_ARTIFACT_DEPTH} "/"-separated segments, e.g. "postgres/schemas.dump"`,
      { store: 'storage', orgId: ref.orgId, object: ref.path },
    );
  }
  for (const segment of segments)
    if (!SAFE_SEGMENT.test(segment)) invalidSegment('artifact path', ref.path, segment, ref.orgId);
  const name = segments[segments.length - 1] ?? '';
  if (name.endsWith(SIDECAR_SUFFIX)) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `artifact path ${JSON.stringify(ref.path)} may not end with the reserved suffix "${SIDECAR_SUFFIX}"`,
      {
        store: 'storage',
        orgId: ref.orgId,
        object: ref.path,
      },
    );
  }
  return segments;
}

/**
 * Validates the name of a top-level JSON document (`manifest.json`).
 * @throws ApplicationFailure `InvalidInput` naming it.
 */
export function assertJsonDocumentName(backup: BackupRef, name: string): void {
  assertBackupRef(backup);
  if (!SAFE_SEGMENT.test(name) || !name.endsWith('.json') || name.endsWith(SIDECAR_SUFFIX)) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `document name ${JSON.stringify(name)} must be a safe file name ending in ".json"`,
      {
        store: 'storage',
        orgId: backup.orgId,
        object: name,
      },
    );
  }
}

/** `org/backup/path`, the object named in messages. */
export function describeArtifact(ref: ArtifactRef): string {
  return `${ref.orgId}/${ref.backupId}/${ref.path}`;
}

/** `<orgId>/`: the organization's folder (its backups and its keys). @throws ApplicationFailure `InvalidInput` */
export function organizationPrefix(orgId: string): string {
  assertSafeSegment('organization id', orgId);
  return `${orgId}/`;
}

/** `<orgId>/<backupId>/`: everything of one backup. @throws ApplicationFailure `InvalidInput` */
export function backupPrefix(backup: BackupRef): string {
  assertBackupRef(backup);
  return `${backup.orgId}/${backup.backupId}/`;
}

/** `<orgId>/<backupId>/<path>`: the stored bytes of an artifact. @throws ApplicationFailure `InvalidInput` */
export function artifactKey(ref: ArtifactRef): string {
  return `${backupPrefix(ref)}${artifactSegments(ref).join('/')}`;
}

/** `<artifact key>.meta.json`: the artifact's sidecar. @throws ApplicationFailure `InvalidInput` */
export function sidecarKey(ref: ArtifactRef): string {
  return `${artifactKey(ref)}${SIDECAR_SUFFIX}`;
}

/** `<orgId>/<backupId>/<name>.json`: a top-level document. @throws ApplicationFailure `InvalidInput` */
export function documentKey(backup: BackupRef, name: string): string {
  assertJsonDocumentName(backup, name);
  return `${backupPrefix(backup)}${name}`;
}

/** `<orgId>/<backupId>/.backup.json`. @throws ApplicationFailure `InvalidInput` */
export function markerKey(backup: BackupRef): string {
  return `${backupPrefix(backup)}${BACKUP_MARKER}`;
}

/** `<orgId>/keys.json`. @throws ApplicationFailure `InvalidInput` */
export function keysKey(orgId: string): string {
  return `${organizationPrefix(orgId)}${KEYS_FILE}`;
}

/** What the keys of one backup (relative to {@link backupPrefix}) hold, by the names above. */
export interface BackupContents {
  /** Paths of artifacts that have a sidecar (committed, if their data is there too), sorted. */
  artifactPaths: string[];
  complete: boolean;
  verified: boolean;
  hasMarker: boolean;
}

/** Reads the layout back from the relative keys of one backup's committed blobs. */
export function backupContents(relativeKeys: readonly string[]): BackupContents {
  return {
    artifactPaths: relativeKeys
      .filter((key) => key.endsWith(SIDECAR_SUFFIX) && key.includes('/'))
      .map((key) => key.slice(0, -SIDECAR_SUFFIX.length))
      .sort(),
    complete: relativeKeys.includes(MANIFEST_FILE),
    verified: relativeKeys.includes(VERIFICATION_FILE),
    hasMarker: relativeKeys.includes(BACKUP_MARKER),
  };
}
