import {
  ActivityFailure,
  ApplicationFailure,
  defineQuery,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import {
  platformTargetProblems,
  type PlatformRestoreProgress,
  type PlatformTarget,
  type RestoredOrganization,
  type RestorePlatformInput,
  type RestorePlatformResult,
} from '../contracts/platform-backup';
import { FailureType } from '../errors';
import type { PlatformComparison } from '../platform/fingerprint-platform';
import { OperationAttribute } from '../search-attributes';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import { trackProgress } from './shared/progress';

const quick = activityProxies(ACTIVITY_KINDS.quick);
const streaming = activityProxies(ACTIVITY_KINDS.streaming);
const log = activityProxies(ACTIVITY_KINDS.deletionLog);

/** `progress` of restorePlatform and verifyPlatformBackup: the current step and those done. */
export const platformRestoreProgressQuery = defineQuery<PlatformRestoreProgress>('progress');

/** Registers the progress query and tags the run; returns the function that moves to the next step. */
export function startPlatformOperation(title: string): (step: string) => void {
  const progress: PlatformRestoreProgress = { step: 'validating input', done: [] };
  setHandler(platformRestoreProgressQuery, () => progress);
  upsertSearchAttributes([{ key: OperationAttribute, value: 'restore' }]);
  const moveTo = trackProgress(progress, title);
  return (step) => {
    progress.done.push(progress.step);
    moveTo(step);
  };
}

/** Fails the run, non-retryable, naming every bad field. */
export function refusePlatformInput(workflow: string, input: Partial<RestorePlatformInput>): void {
  const problems = platformTargetProblems(input);
  if (problems.length > 0)
    throw ApplicationFailure.nonRetryable(
      `${workflow}: invalid input: ${problems.join('; ')}`,
      FailureType.InvalidInput,
    );
}

/** Both backups exist with the dumps they must hold; returns every organization they hold. */
export async function readPlatformBackups(backupId: string, clickhouseBackupId: string): Promise<string[]> {
  const postgres = await quick.describePlatformBackup({ backupId });
  const clickhouse =
    clickhouseBackupId === backupId ? postgres : await quick.describePlatformBackup({ backupId: clickhouseBackupId });
  const missing = [
    ...(postgres.stores.includes('postgres') ? [] : [`platform backup ${backupId} holds no postgres dump`]),
    ...(clickhouse.stores.includes('clickhouse')
      ? []
      : [`platform backup ${clickhouseBackupId} holds no clickhouse dump`]),
  ];
  if (missing.length > 0)
    throw ApplicationFailure.nonRetryable(
      `${missing.join('; ')}: give the one that does as ${missing.length > 1 ? 'backupId' : 'clickhouseBackupId'}`,
      FailureType.UnknownBackup,
    );
  return [...new Set([...postgres.organizations, ...clickhouse.organizations])].sort();
}

/**
 * Nothing is restored into a cluster or server that holds anything: both are checked before either
 * is touched, and a refusal names what each non-empty one holds.
 */
export async function assertTargetsEmpty(target: PlatformTarget): Promise<void> {
  const checks = await Promise.allSettled([
    quick.assertPostgresTargetEmpty({ targetUrl: target.postgresUrl }),
    quick.assertClickHouseTargetEmpty({ targetUrl: target.clickhouseUrl }),
  ]);
  const refusals = checks.flatMap((c) => (c.status === 'rejected' ? [c.reason as unknown] : []));
  if (refusals.length === 0) return;
  const causes = refusals.map((r) =>
    r instanceof ActivityFailure && r.cause instanceof ApplicationFailure ? r.cause : r,
  );
  const permanent = causes.every((c) => c instanceof ApplicationFailure && c.nonRetryable);
  if (!permanent) throw refusals[0];
  throw ApplicationFailure.nonRetryable(
    causes.map((c) => (c instanceof Error ? c.message : String(c))).join('; '),
    FailureType.RestoreRefused,
  );
}

/** Both stores in parallel: PostgreSQL globals and databases (pg_restore --jobs), ClickHouse databases. */
export async function restoreBothStores(
  backupId: string,
  clickhouseBackupId: string,
  target: PlatformTarget,
  jobs: number,
): Promise<{ postgresDatabases: string[]; clickhouseDatabases: string[] }> {
  const [postgres, clickhouse] = await Promise.all([
    streaming.restorePlatformPostgres({ backupId, targetUrl: target.postgresUrl, jobs }),
    streaming.restorePlatformClickHouse({ backupId: clickhouseBackupId, targetUrl: target.clickhouseUrl }),
  ]);
  return { postgresDatabases: postgres.databases, clickhouseDatabases: clickhouse.databases };
}

/** Fingerprints both restored stores and merges their verdicts per organization. */
export async function compareWithBackup(
  backupId: string,
  clickhouseBackupId: string,
  target: PlatformTarget,
  deletedOrgIds: string[],
): Promise<{ organizations: RestoredOrganization[]; platformDifferences: string[]; platformObjects: number }> {
  // Fingerprinting a whole platform takes as long as its data: a streaming call, heartbeating.
  const [postgres, clickhouse]: PlatformComparison[] = await Promise.all([
    streaming.comparePlatformPostgresTarget({ backupId, targetUrl: target.postgresUrl, deletedOrgIds }),
    streaming.comparePlatformClickHouseTarget({
      backupId: clickhouseBackupId,
      targetUrl: target.clickhouseUrl,
      deletedOrgIds,
    }),
  ]);
  const byOrg = new Map<string, RestoredOrganization>();
  for (const [store, comparison] of [
    ['postgres', postgres],
    ['clickhouse', clickhouse],
  ] as const) {
    for (const org of comparison.organizations) {
      const before = byOrg.get(org.orgId);
      const differences = [...(before?.differences ?? []), ...(org.differences ?? []).map((d) => `${store}: ${d}`)];
      const outcome = differences.length > 0 ? 'differs' : org.outcome;
      byOrg.set(org.orgId, { orgId: org.orgId, outcome, ...(differences.length > 0 ? { differences } : {}) });
    }
  }
  return {
    organizations: [...byOrg.values()].sort((a, b) => (a.orgId < b.orgId ? -1 : a.orgId > b.orgId ? 1 : 0)),
    platformDifferences: [
      ...postgres.platformDifferences.map((d) => `postgres: ${d}`),
      ...clickhouse.platformDifferences.map((d) => `clickhouse: ${d}`),
    ],
    platformObjects: postgres.platformObjects + clickhouse.platformObjects,
  };
}

/**
 * The runbook's `psql < full_backup.sql` into an EMPTY cluster, for the whole platform: checks that
 * both backups and their dumps exist and that both target servers are empty (before touching either),
 * restores PostgreSQL (globals, then every database with `pg_restore --jobs`) and ClickHouse (every
 * database) in parallel, then applies again every deletion recorded in the backup store's deletion
 * log — the authority, which no dump contains — so no deleted organization comes back, and last
 * proves the result: every other organization, and every object outside them, fingerprints as it
 * did in the backup. Fails `VerificationFailed` naming each difference.
 */
export async function restorePlatform(input: RestorePlatformInput): Promise<RestorePlatformResult> {
  const moveTo = startPlatformOperation('restorePlatform');
  refusePlatformInput('restorePlatform', input);
  const backupId = input.backupId;
  const clickhouseBackupId = input.clickhouseBackupId ?? backupId;
  const target = { postgresUrl: input.postgresUrl, clickhouseUrl: input.clickhouseUrl };

  moveTo(`reading platform backup ${backupId}`);
  const orgIds = await readPlatformBackups(backupId, clickhouseBackupId);

  moveTo('checking that the target servers are empty');
  await assertTargetsEmpty(target);

  moveTo('restoring PostgreSQL and ClickHouse');
  const restored = await restoreBothStores(backupId, clickhouseBackupId, target, input.jobs ?? 2);

  moveTo('applying recorded deletions again');
  const deleted = await log.deletionsInEffect({ orgIds });
  if (deleted.length > 0) {
    await Promise.all([
      quick.purgeOrganizationsFromPostgresTarget({ targetUrl: target.postgresUrl, orgIds: deleted }),
      quick.purgeOrganizationsFromClickHouseTarget({ targetUrl: target.clickhouseUrl, orgIds: deleted }),
    ]);
  }

  moveTo('comparing fingerprints with the backup');
  const compared = await compareWithBackup(backupId, clickhouseBackupId, target, deleted);
  const result: RestorePlatformResult = {
    backupId,
    clickhouseBackupId,
    ...restored,
    ...compared,
    deletionsReapplied: deleted,
  };
  const differing = compared.organizations.filter((o) => o.outcome === 'differs');
  if (differing.length > 0 || compared.platformDifferences.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `restorePlatform ${workflowInfo().workflowId}: the restored platform differs from backup ${backupId}: ` +
        [
          ...differing.map((o) => `${o.orgId}: ${(o.differences ?? []).slice(0, 3).join('; ')}`),
          ...compared.platformDifferences.slice(0, 5),
        ].join(' | '),
      FailureType.VerificationFailed,
      result,
    );
  }
  moveTo('done');
  return result;
}
