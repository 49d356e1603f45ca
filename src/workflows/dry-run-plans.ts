// The dry runs of the destructive workflows: one early branch of `restoreOrganization` and of
// `deleteOrganization` each, which asks the plan activities what the real run would create, replace
// or remove, and changes nothing. A refusal the real run would meet (a running operation, a target
// that is not empty, a deletion record) is listed in the plan instead of failing it.
import { upsertSearchAttributes } from '@temporalio/workflow';
import type { DeletionPlan, RestorePlan } from '../contracts/plans';
import { OrgIdAttribute } from '../search-attributes';
import { quickActivities as quick } from './shared/activity-proxies';
import { rootMessage } from './shared/failures';

/** What the real run would meet from other runs on the organization, as a refusal line (or none). */
async function conflictRefusal(orgId: string): Promise<string[]> {
  try {
    await quick.assertNoConflictingOperation({ orgId, operations: ['restore', 'delete', 'backup'] });
    return [];
  } catch (err) {
    return [rootMessage(err)];
  }
}

/** The dry run of `restoreOrganization`: locates the backup as the real run does, then plans. */
export async function planRestore(input: {
  backupId?: string;
  orgId?: string;
  latest?: boolean;
  targetOrgId?: string;
  mode: 'into-empty' | 'replace';
  override?: { reason: string };
}): Promise<RestorePlan> {
  const backup = await quick.locateBackup(
    input.latest
      ? { orgId: input.orgId, latest: true, verified: true }
      : { backupId: input.backupId, ...(input.orgId ? { orgId: input.orgId } : {}) },
  );
  const targetOrgId = input.targetOrgId ?? backup.orgId;
  // OrgId only, no Operation: a plan must not make other runs on the organization see a conflict.
  upsertSearchAttributes([{ key: OrgIdAttribute, value: targetOrgId }]);
  const plan = await quick.planRestore({
    orgId: backup.orgId,
    backupId: backup.backupId,
    targetOrgId,
    mode: input.mode,
    override: input.override !== undefined,
  });
  return { ...plan, refusals: [...(await conflictRefusal(targetOrgId)), ...plan.refusals] };
}

/** The dry run of `deleteOrganization` (input already checked by its parser). */
export async function planDeletion(input: {
  orgId: string;
  skipBackup: boolean;
  reason: string;
  gracePeriod: string;
}): Promise<DeletionPlan> {
  upsertSearchAttributes([{ key: OrgIdAttribute, value: input.orgId }]);
  const plan = await quick.planDeletion(input);
  return { ...plan, refusals: [...(await conflictRefusal(input.orgId)), ...plan.refusals] };
}
