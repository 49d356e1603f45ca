import { z } from 'zod';

/** Stores that hold durable data and are backed up; the queue and Redis are ephemeral by design. */
export type BackupStoreName = 'postgres' | 'clickhouse';
export const BACKUP_STORES: readonly BackupStoreName[] = ['postgres', 'clickhouse'];

/** Input of `backupOrganization`, as typed into the Temporal UI. */
export interface BackupOrganizationInput {
  orgId: string;
  /** Why the backup is taken: recorded in the manifest. */
  reason?: string;
  /** Stores to back up; both durable stores by default. */
  stores?: BackupStoreName[];
  /** Run `verifyBackup` as a child workflow once the backup is committed (when it exists). */
  verify?: boolean;
}

/** How a fingerprint hashed PostgreSQL rows (see platform/fingerprint-postgres.ts). */
export const POSTGRES_ROW_HASHES = ['md5-text', 'record-hash', 'portable-record-hash'] as const;
export type PostgresRowHash = (typeof POSTGRES_ROW_HASHES)[number];
/** What new fingerprints use. */
export const CURRENT_POSTGRES_ROW_HASH: PostgresRowHash = 'portable-record-hash';
/** What a manifest without the field used: every backup before `record-hash` existed. */
export const LEGACY_POSTGRES_ROW_HASH: PostgresRowHash = 'md5-text';

/**
 * Which privilege records a PostgreSQL fingerprint covers (platform/postgres-privileges.ts):
 * `owners-acls-policies` adds one `privileges:` object (owners, ACLs, default privileges, row
 * security, policies); `none` is every manifest before privileges were backed up.
 */
export const POSTGRES_PRIVILEGE_FINGERPRINTS = ['none', 'owners-acls-policies'] as const;
export type PostgresPrivilegeFingerprint = (typeof POSTGRES_PRIVILEGE_FINGERPRINTS)[number];
export const CURRENT_POSTGRES_PRIVILEGE_FINGERPRINT: PostgresPrivilegeFingerprint = 'owners-acls-policies';

/** How a fingerprint hashed ClickHouse rows (see platform/fingerprint-clickhouse.ts). */
export const CLICKHOUSE_ROW_HASHES = ['text-tuple', 'column-hash', 'final-column-hash'] as const;
export type ClickHouseRowHash = (typeof CLICKHOUSE_ROW_HASHES)[number];
/**
 * What new fingerprints use: `column-hash` read as the table's final state (`FINAL` for tables
 * whose merges collapse rows, aggregate states by their finalized values), so a copy whose parts
 * merged differently fingerprints the same. `column-hash` and `text-tuple` manifests keep their own reading.
 */
export const CURRENT_CLICKHOUSE_ROW_HASH: ClickHouseRowHash = 'final-column-hash';
/** What a manifest without the field used: every backup before `column-hash` existed. */
export const LEGACY_CLICKHOUSE_ROW_HASH: ClickHouseRowHash = 'text-tuple';

/** The row hashes of a fingerprint, per store; absent ones mean the current algorithm. */
export interface RowHashes {
  postgresRowHash?: PostgresRowHash;
  clickhouseRowHash?: ClickHouseRowHash;
  /** Whether and how the PostgreSQL fingerprint covers privileges. */
  postgresPrivileges?: PostgresPrivilegeFingerprint;
}

/** One written artifact as the manifest records it. */
export const manifestArtifactSchema = z.object({
  store: z.enum(['postgres', 'clickhouse']),
  /** What it holds: `schemas`, `shared:public.users`, `clickhouse:kg_nodes`, `clickhouse-ddl:kg_nodes`. */
  object: z.string(),
  /** Path relative to the backup folder. */
  file: z.string(),
  bytes: z.number().int().nonnegative(),
  rawBytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  /** Rows in the artifact, where the format tells; null for a pg_dump archive or a DDL file. */
  rows: z.number().int().nonnegative().nullable(),
  /** How the stored bytes are compressed: `zstd` since the uncompressed pg_dump archives (issue 17). */
  compression: z.enum(['gzip', 'none', 'zstd']),
  encrypted: z.boolean(),
  keyId: z.string().optional(),
  /** Columns of a COPY artifact in file order, so a restore never depends on today's column order. */
  columns: z.array(z.string()).optional(),
});
export type ManifestArtifact = z.infer<typeof manifestArtifactSchema>;

export const objectFingerprintSchema = z.object({
  store: z.enum(['postgres', 'clickhouse', 'queue', 'redis']),
  object: z.string(),
  rows: z.number().int().nonnegative(),
  hash: z.string(),
});

/**
 * Which moment the rows of a store or object in a backup represent (the manifest's `pointsInTime`).
 * - `snapshot`: one snapshot of the whole store (PostgreSQL's exported snapshot), `from` = `to`.
 * - `attached-parts`: a MergeTree table's parts attached, partition by partition, to a private copy
 *   (`ATTACH PARTITION … FROM`): each partition as it was at one moment between `from` and `to`.
 * - `copied-rows`: any other table copied by one `INSERT … SELECT`, which reads one state of it.
 * - `unchanged-reads`: a table read in place (no right to make a copy), fingerprinted before and after
 *   its export with equal results, so nothing changed in between.
 * The data and the fingerprint of an object always describe the same rows; different objects may be
 * from different moments, and so may the two stores.
 */
export const pointInTimeSchema = z.object({
  store: z.enum(['postgres', 'clickhouse']),
  /** `*` for a whole store read in one snapshot, else the object, e.g. `clickhouse:kg_nodes`. */
  object: z.string(),
  from: z.string(),
  to: z.string(),
  how: z.enum(['snapshot', 'attached-parts', 'copied-rows', 'unchanged-reads']),
});
export type PointInTime = z.infer<typeof pointInTimeSchema>;

export const MANIFEST_FORMAT_VERSION = 1;

/** `manifest.json`: written last and atomically; a backup without one does not exist. */
export const backupManifestSchema = z.object({
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
  backupId: z.string(),
  orgId: z.string(),
  reason: z.string(),
  workflowId: z.string(),
  startedAt: z.string(),
  finishedAt: z.string(),
  stores: z.array(z.enum(['postgres', 'clickhouse'])),
  serverVersions: z.object({
    postgres: z.string().optional(),
    pgDump: z.string().optional(),
    clickhouse: z.string().optional(),
  }),
  /** Id of the organization's data key when the artifacts are encrypted. */
  keyId: z.string().optional(),
  artifacts: z.array(manifestArtifactSchema),
  /** The organization's fingerprint at backup time, for the backed-up stores. */
  fingerprint: z.object({
    takenAt: z.string(),
    /** How PostgreSQL rows were hashed; absent in manifests written before it was recorded (`md5-text`). */
    postgresRowHash: z.enum(POSTGRES_ROW_HASHES).optional(),
    /** How ClickHouse rows were hashed; absent in manifests written before it was recorded (`text-tuple`). */
    clickhouseRowHash: z.enum(CLICKHOUSE_ROW_HASHES).optional(),
    /** Whether PostgreSQL privileges are in the fingerprint; absent in manifests written before (`none`). */
    postgresPrivileges: z.enum(POSTGRES_PRIVILEGE_FINGERPRINTS).optional(),
    objects: z.array(objectFingerprintSchema),
  }),
  /** Which moment each store (and each ClickHouse table) represents; absent in older manifests. */
  pointsInTime: z.array(pointInTimeSchema).optional(),
  /** What was deliberately left out (ephemeral stores) and how much of it there was. */
  ephemeral: z.object({
    queue: z.array(z.object({ stream: z.string(), subject: z.string(), messages: z.number() })),
    redis: z.array(z.object({ pattern: z.string(), keys: z.number() })),
    /**
     * Ephemeral stores that did not answer when counted, with the reason: their list above is empty
     * because it is unknown, not because nothing was there. A backup never waits for a store it does not back up.
     */
    unavailable: z.object({ queue: z.string().optional(), redis: z.string().optional() }).optional(),
  }),
});
export type BackupManifest = z.infer<typeof backupManifestSchema>;

/** What one store's backup activity produced. */
export interface StoreBackupResult {
  store: BackupStoreName;
  serverVersion: string;
  toolVersion?: string;
  artifacts: ManifestArtifact[];
  fingerprint: z.infer<typeof objectFingerprintSchema>[];
  /** How the PostgreSQL fingerprint hashed rows (PostgreSQL only). */
  postgresRowHash?: PostgresRowHash;
  /** Whether the PostgreSQL fingerprint covers privileges (PostgreSQL only; absent: `none`). */
  postgresPrivileges?: PostgresPrivilegeFingerprint;
  /** How the ClickHouse fingerprint hashed rows (ClickHouse only). */
  clickhouseRowHash?: ClickHouseRowHash;
  /** Artifacts found finished by an earlier attempt and kept (resume after a crash). */
  resumedArtifacts: number;
  /** Which moment the store's data represents, per object or `*` (see {@link pointInTimeSchema}). */
  pointsInTime?: PointInTime[];
}

/** Progress of one artifact, in heartbeats and in the workflow's progress query. */
export interface ArtifactProgress {
  store: BackupStoreName;
  object: string;
  bytes: number;
  rows: number | null;
  done: boolean;
}

/** Name of the signal by which backup activities report artifacts still being written. */
export const BACKUP_PROGRESS_SIGNAL = 'backupArtifactProgress';

/** One store's artifacts as its backup activity sees them: finished ones and the one being written. */
export interface StoreProgressReport {
  store: BackupStoreName;
  artifacts: ArtifactProgress[];
}

export interface BackupProgress {
  backupId: string;
  orgId: string;
  step: 'preflight' | 'checking' | 'backing-up' | 'committing' | 'verifying' | 'done' | 'failed';
  artifacts: ArtifactProgress[];
}

/** What `backupOrganization` returns. */
export interface BackupSummary {
  backupId: string;
  orgId: string;
  location: string;
  artifacts: number;
  bytes: number;
  rows: number;
  durationMs: number;
  keyId?: string;
  resumedArtifacts: number;
  verification?: { passed: boolean; workflowId: string };
}

/** The row hashes a manifest's fingerprint was taken with, so a restored copy is fingerprinted alike. */
export function manifestRowHashes(manifest: BackupManifest): Required<RowHashes> {
  return {
    postgresRowHash: manifest.fingerprint.postgresRowHash ?? LEGACY_POSTGRES_ROW_HASH,
    clickhouseRowHash: manifest.fingerprint.clickhouseRowHash ?? LEGACY_CLICKHOUSE_ROW_HASH,
    postgresPrivileges: manifest.fingerprint.postgresPrivileges ?? 'none',
  };
}
