import { z } from 'zod';
import {
  CLICKHOUSE_ROW_HASHES,
  manifestArtifactSchema,
  objectFingerprintSchema,
  POSTGRES_ROW_HASHES,
  type ManifestArtifact,
} from './backup';

/**
 * The whole-platform layer of `backupPlatform`: a restorable dump of every PostgreSQL database (with
 * the cluster's globals) and of every ClickHouse database, in `_platform/<backupId>/`, beside the
 * per-organization backups. Each store's dump activity writes its part as a JSON document; the
 * manifest, which merges them, is written last (a platform backup without it does not exist).
 */

/** Format of `_platform/<id>/manifest.json` with the database dumps (the globals-only manifest had none). */
export const PLATFORM_MANIFEST_FORMAT_VERSION = 2;

/** Fingerprints of one organization as the platform dump holds it. */
export const platformOrganizationSchema = z.object({
  orgId: z.string(),
  objects: z.array(objectFingerprintSchema),
});
export type PlatformOrganization = z.infer<typeof platformOrganizationSchema>;

/** What one store's dump activity wrote (`postgres-part.json`, `clickhouse-part.json`). */
export const platformPartSchema = z.object({
  store: z.enum(['postgres', 'clickhouse']),
  serverVersion: z.string(),
  toolVersion: z.string().optional(),
  /** PostgreSQL: the database of the organizations (the platform database). */
  platformDatabase: z.string().optional(),
  /** PostgreSQL: every database dumped; ClickHouse: every database exported. */
  databases: z.array(z.string()),
  artifacts: z.array(manifestArtifactSchema),
  /** Every organization found in the store (schemas, rows, databases), each fingerprinted from what was dumped. */
  organizations: z.array(platformOrganizationSchema),
  /** Every object that belongs to no organization: tables of other schemas and databases, shared rows without an organization. */
  platformObjects: z.array(objectFingerprintSchema),
  rowHash: z.union([z.enum(POSTGRES_ROW_HASHES), z.enum(CLICKHOUSE_ROW_HASHES)]),
});
export type PlatformPart = z.infer<typeof platformPartSchema>;

export const platformManifestSchema = z.object({
  formatVersion: z.literal(PLATFORM_MANIFEST_FORMAT_VERSION),
  kind: z.literal('platform'),
  backupId: z.string(),
  reason: z.string(),
  workflowId: z.string(),
  finishedAt: z.string(),
  /** Id of the platform folder's data key when artifacts are encrypted. */
  keyId: z.string().optional(),
  parts: z.array(platformPartSchema),
});
export type PlatformManifest = z.infer<typeof platformManifestSchema>;

/** Summary an activity returns to the workflow (the details stay in the store, not in the history). */
export interface PlatformPartSummary {
  store: 'postgres' | 'clickhouse';
  databases: string[];
  artifacts: number;
  bytes: number;
  organizations: number;
  platformObjects: number;
}

export function summarizePart(part: PlatformPart): PlatformPartSummary {
  return {
    store: part.store,
    databases: part.databases,
    artifacts: part.artifacts.length,
    bytes: part.artifacts.reduce((sum: number, a: ManifestArtifact) => sum + a.bytes, 0),
    organizations: part.organizations.length,
    platformObjects: part.platformObjects.length,
  };
}

/** Servers a platform backup is restored into. They must be empty (a fresh cluster). */
export interface PlatformTarget {
  /** e.g. `postgres://postgres@10.0.0.5:5432/postgres`: a superuser of the new cluster, maintenance database. */
  postgresUrl: string;
  /** e.g. `http://default:secret@10.0.0.6:8123`. */
  clickhouseUrl: string;
}

export interface RestorePlatformInput extends PlatformTarget {
  /** The platform backup (`_platform/<id>`) holding the PostgreSQL dump, and the ClickHouse one unless `clickhouseBackupId` is given. */
  backupId: string;
  /** The platform backup holding the ClickHouse dump, when the daily schedules took them apart. @default backupId */
  clickhouseBackupId?: string;
  /** Recorded in the log. */
  requestedBy?: string;
  /** Parallel jobs of `pg_restore`. @default 2 */
  jobs?: number;
}

/** One organization after a platform restore. */
export interface RestoredOrganization {
  orgId: string;
  /** `matches`: fingerprint equals the backup's; `deleted`: a deletion in effect, removed again; `differs`: see differences. */
  outcome: 'matches' | 'deleted' | 'differs';
  differences?: string[];
}

export interface RestorePlatformResult {
  backupId: string;
  clickhouseBackupId: string;
  postgresDatabases: string[];
  clickhouseDatabases: string[];
  organizations: RestoredOrganization[];
  /** Non-organization objects whose fingerprint differs from the backup's (empty when all match). */
  platformDifferences: string[];
  /** Organizations whose recorded deletion was applied again on the target. */
  deletionsReapplied: string[];
  /** Objects outside the organizations that were compared. */
  platformObjects: number;
}

export interface VerifyPlatformBackupInput extends PlatformTarget {
  backupId: string;
  clickhouseBackupId?: string;
  jobs?: number;
}

export interface VerifyPlatformBackupResult {
  backupId: string;
  clickhouseBackupId: string;
  passed: boolean;
  organizations: number;
  platformObjects: number;
  differences: string[];
  verifiedAt: string;
}

/** The progress query of restorePlatform and verifyPlatformBackup. */
export interface PlatformRestoreProgress {
  step: string;
  done: string[];
}
export const PLATFORM_RESTORE_PROGRESS_QUERY = 'progress';

const BACKUP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** Input problems, each naming its field; empty when the input is fine. */
export function platformTargetProblems(input: Partial<RestorePlatformInput> | null | undefined): string[] {
  if (input === null || typeof input !== 'object') return ['input: expected an object'];
  const problems: string[] = [];
  if (typeof input.backupId !== 'string' || !BACKUP_ID.test(input.backupId))
    problems.push(
      `backupId: expected a platform backup id (letters, digits, ".", "_", "-"), got ${JSON.stringify(input.backupId)}`,
    );
  if (
    input.clickhouseBackupId !== undefined &&
    (typeof input.clickhouseBackupId !== 'string' || !BACKUP_ID.test(input.clickhouseBackupId))
  )
    problems.push(`clickhouseBackupId: expected a platform backup id, got ${JSON.stringify(input.clickhouseBackupId)}`);
  const url = (field: 'postgresUrl' | 'clickhouseUrl', protocols: string[]) => {
    const value = input[field];
    let parsed: URL | undefined;
    try {
      parsed = typeof value === 'string' ? new URL(value) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!parsed || !protocols.includes(parsed.protocol))
      problems.push(
        `${field}: expected a ${protocols.join(' or ')}// URL of the target server, got ${JSON.stringify(typeof value === 'string' ? value.replace(/:[^:@/]*@/, ':***@') : value)}`,
      );
  };
  url('postgresUrl', ['postgres:', 'postgresql:']);
  url('clickhouseUrl', ['http:', 'https:']);
  if (input.jobs !== undefined && (!Number.isInteger(input.jobs) || input.jobs < 1 || input.jobs > 16))
    problems.push(`jobs: expected a whole number 1-16, got ${JSON.stringify(input.jobs)}`);
  return problems;
}
