import { ApplicationFailure, patched, upsertSearchAttributes } from '@temporalio/workflow';
import { FailureType } from '../errors';
import { parseOrgId } from '../platform/org-id';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';
import { DEFAULT_RETENTION, type RetentionPolicy } from '../storage/retention';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';

export interface PruneBackupsInput {
  /** One organization; every organization with backups when absent. */
  orgId?: string;
  keepLast?: number;
  keepDaily?: number;
  keepWeekly?: number;
  /** Decide and report, delete nothing. @default false */
  dryRun?: boolean;
}

export interface PruneBackupsResult {
  organizations: Array<{ orgId: string; kept: number; removed: string[] }>;
  dryRun: boolean;
}

const storage = activityProxies(ACTIVITY_KINDS.pruning);

/** Marker of runs that prune the platform backups too. */
const PLATFORM_RETENTION_PATCH = 'prune-platform-backups-v1';
/** The backup store's folder of whole-platform backups (storage/backup-layout.ts `PLATFORM_NAMESPACE`). */
const PLATFORM_BACKUPS = '_platform';

function count(input: PruneBackupsInput, field: 'keepLast' | 'keepDaily' | 'keepWeekly'): number {
  const value = input[field] ?? DEFAULT_RETENTION[field];
  if (!Number.isInteger(value) || value < 0) {
    throw ApplicationFailure.nonRetryable(
      `${field}: expected a whole number >= 0, got ${JSON.stringify(value)}`,
      FailureType.InvalidInput,
    );
  }
  return value;
}

/**
 * Retention: keep the last N, daily D and weekly W backups of each organization. Never deletes an
 * organization's newest complete backup, nor a backup held by an unfinished deletion. Without
 * `orgId`, the whole-platform backups (`_platform`) are pruned by the same policy.
 */
export async function pruneBackups(input: PruneBackupsInput = {}): Promise<PruneBackupsResult> {
  const policy: RetentionPolicy = {
    keepLast: count(input, 'keepLast'),
    keepDaily: count(input, 'keepDaily'),
    keepWeekly: count(input, 'keepWeekly'),
  };
  const orgIds = input.orgId !== undefined ? [parseOrgId(input.orgId)] : await storage.listBackedUpOrganizations();
  upsertSearchAttributes([
    { key: OperationAttribute, value: 'prune' },
    ...(input.orgId !== undefined ? [{ key: OrgIdAttribute, value: orgIds[0] ?? '' }] : []),
  ]);
  const dryRun = input.dryRun ?? false;
  const organizations: PruneBackupsResult['organizations'] = [];
  for (const orgId of orgIds) {
    const decision = await storage.pruneOrganizationBackups({ orgId, policy, dryRun });
    organizations.push({ orgId, kept: decision.keep.length, removed: decision.remove });
  }
  // Whole-platform backups (`_platform`, backupPlatform's dumps) follow the same policy; runs of older code skip them.
  if (input.orgId === undefined && patched(PLATFORM_RETENTION_PATCH)) {
    const decision = await storage.pruneOrganizationBackups({ orgId: PLATFORM_BACKUPS, policy, dryRun });
    organizations.push({ orgId: PLATFORM_BACKUPS, kept: decision.keep.length, removed: decision.remove });
  }
  return { organizations, dryRun };
}
