import { sleep, upsertSearchAttributes, ApplicationFailure } from '@temporalio/workflow';
import { parseDurationMs } from '../contracts/deletion';
import { FailureType } from '../errors';
import { parseOrgId } from '../platform/org-id';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';

export interface ShredOrganizationBackupsInput {
  orgId: string;
  /** Run id of the deletion whose certificate records the shredding. */
  deletionRunId: string;
  /** How long to wait first, e.g. `30d`; `0s` shreds at once. */
  retention: string;
}

export interface ShredOrganizationBackupsResult {
  orgId: string;
  /** Why nothing was shredded (a restore overrode the deletion). */
  skipped?: string;
  removedBackups: string[];
  destroyedKeyIds: string[];
}

// Storage may be down when the retention ends: keep trying (hours, not minutes) instead of failing.
const storage = activityProxies(ACTIVITY_KINDS.shredding);

/**
 * Crypto-shredding of a deleted organization, after the retention of its pre-deletion backup:
 * waits `retention` (a durable timer: two history events however long), then removes every backup
 * of the organization and destroys its data key, and updates the deletion certificate.
 * Started by `deleteOrganization` as an abandoned child. Carries `Operation=prune`: it removes
 * backups, and must not count as a running deletion that would block a restore during the retention.
 */
export async function shredOrganizationBackups(
  input: ShredOrganizationBackupsInput,
): Promise<ShredOrganizationBackupsResult> {
  const orgId = parseOrgId(input.orgId);
  upsertSearchAttributes([
    { key: OrgIdAttribute, value: orgId },
    { key: OperationAttribute, value: 'prune' },
  ]);
  if (typeof input.deletionRunId !== 'string' || input.deletionRunId === '') {
    throw ApplicationFailure.nonRetryable(
      'deletionRunId: expected the run id of the deletion',
      FailureType.InvalidInput,
    );
  }
  let retentionMs: number;
  try {
    retentionMs = parseDurationMs(input.retention, 'retention');
  } catch (err) {
    throw ApplicationFailure.nonRetryable(err instanceof Error ? err.message : String(err), FailureType.InvalidInput);
  }
  if (retentionMs > 0) await sleep(retentionMs);
  const result = await storage.shredOrganizationBackups({ orgId, deletionRunId: input.deletionRunId });
  return { orgId, ...result };
}
