import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  executeChild,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { manifestRowHashes } from '../contracts/backup';
import type { RestorePlan } from '../contracts/plans';
import type { ObjectComparison, RestoreOrganizationInput, RestoreResult } from '../contracts/verification';
import { FailureType } from '../errors';
import { compareObjectFingerprints, describeDifferences } from '../platform/fingerprint-compare';
import { parseOrgId } from '../platform/org-id';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';
import { quickActivities as quick, streamingActivities as restoring } from './shared/activity-proxies';
import { hashingActivities } from './shared/scaled-timeouts';
import { backupOrganization } from './backup-organization';
import { planRestore } from './dry-run-plans';
import { Compensations, describeCompensations } from './shared/compensations';
import { rootMessage } from './shared/failures';
import { trackProgress } from './shared/progress';

export interface RestoreProgress {
  step: string;
  sourceOrgId?: string;
  targetOrgId?: string;
  backupId: string;
  safetyBackupId?: string;
}

export const restoreProgressQuery = defineQuery<RestoreProgress>('restoreProgress');

/** Patch id: PostgreSQL's archive, roles and extensions are checked before anything changes. */
const CHECKS_POSTGRES_BEFORE_CHANGES = 'restore-checks-postgres-before-changes';

/** Patch id: a failed compensation no longer stops the ones after it. */
const COMPENSATIONS_CONTINUE_PAST_A_FAILURE = 'restore-compensations-continue-past-a-failure';
/**
 * Patch id: the backup is loaded and proven in scratch databases before the target is touched, the
 * safety backup is verified, and the live target is never fingerprinted (a busy organization would
 * differ, and the old code then wiped it). Runs begun before replay the old order.
 */
const STAGED_PROOF_BEFORE_TARGET = 'restore-staged-proof-before-target';
/** Patch id: the artifact check's time limit grows with the backup's bytes (it was a fixed 10 min). */
const SCALED_ARTIFACT_CHECK = 'restore-scaled-artifact-check';

/**
 * Patch id: a `replace` loads the new data beside the original (PostgreSQL schemas renamed aside,
 * ClickHouse tables staged and swapped in by RENAME), so a failed load renames the original back
 * instead of rebuilding it from the safety backup. Runs begun before clear the target and load it.
 */
const SWAP_BESIDE_ORIGINAL = 'restore-replace-swaps-beside-original';

/** Patch id: the staged proof waits for both loads to stop before it drops their scratch databases. */
const PROOF_WAITS_FOR_BOTH_LOADS = 'restore-proof-waits-for-both-loads';

function runSuffix(runId: string): string {
  return runId
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 24);
}

/** Scratch names of a restore's staged copy, derived from the run so cleanup always finds them. */
export function stagingNames(runId: string): { postgres: string; clickhouse: string } {
  const suffix = runSuffix(runId);
  return { postgres: `eloquent_scratch_restore_${suffix}`, clickhouse: `eloquent_scratch_restore_${suffix}` };
}

/**
 * Where a swapping `replace` keeps things, derived from the run so cleanup always finds them: the
 * target's PostgreSQL schemas become `<postgresAside>_<n>`, ClickHouse's new tables are staged in
 * `clickhouseStaging` and the original ones moved to `clickhouseAside`.
 */
export function swapNames(runId: string): {
  postgresAside: string;
  clickhouseStaging: string;
  clickhouseAside: string;
} {
  const suffix = runSuffix(runId);
  return {
    postgresAside: `eloquent_aside_${suffix}`,
    clickhouseStaging: `eloquent_scratch_swap_${suffix}`,
    clickhouseAside: `eloquent_aside_${suffix}`,
  };
}

function parseInput(
  input: RestoreOrganizationInput | undefined,
): RestoreOrganizationInput & { mode: 'into-empty' | 'replace' } {
  if (input === null || typeof input !== 'object') {
    throw ApplicationFailure.nonRetryable(
      'input: expected {"backupId": "..."} or {"orgId": "...", "latest": true}',
      FailureType.InvalidInput,
    );
  }
  if (input.latest !== undefined && input.latest !== true) {
    throw ApplicationFailure.nonRetryable(
      `latest: expected true (the newest verified backup of orgId) or no field; got ${JSON.stringify(input.latest)}`,
      FailureType.InvalidInput,
    );
  }
  if (input.latest === true) {
    if (input.backupId !== undefined || typeof input.orgId !== 'string')
      throw ApplicationFailure.nonRetryable(
        'latest: expected "orgId" and no "backupId" (latest restores the newest verified backup of orgId)',
        FailureType.InvalidInput,
      );
  } else if (typeof input.backupId !== 'string' || input.backupId === '') {
    throw ApplicationFailure.nonRetryable(
      'backupId: expected the id of a complete backup, or "orgId" with "latest": true',
      FailureType.InvalidInput,
    );
  }
  const mode = input.mode ?? 'into-empty';
  if (mode !== 'into-empty' && mode !== 'replace') {
    throw ApplicationFailure.nonRetryable(
      `mode: expected "into-empty" or "replace", got ${JSON.stringify(mode)}`,
      FailureType.InvalidInput,
    );
  }
  if (
    input.override !== undefined &&
    (typeof input.override?.reason !== 'string' || input.override.reason.trim() === '')
  ) {
    throw ApplicationFailure.nonRetryable('override.reason: expected a non-empty reason', FailureType.InvalidInput);
  }
  const mapping = input.roleMapping ?? {};
  if (mapping === null || typeof mapping !== 'object' || Array.isArray(mapping)) {
    throw ApplicationFailure.nonRetryable(
      'roleMapping: expected {"<role in the backup>": "<role on the target>", …}',
      FailureType.InvalidInput,
    );
  }
  const mappedTo = new Map<string, string>();
  for (const [from, to] of Object.entries(mapping)) {
    if (typeof to !== 'string' || to === '' || from === '') {
      throw ApplicationFailure.nonRetryable(`roleMapping.${from}: expected a role name`, FailureType.InvalidInput);
    }
    const other = mappedTo.get(to);
    if (other !== undefined) {
      throw ApplicationFailure.nonRetryable(
        `roleMapping: ${JSON.stringify(other)} and ${JSON.stringify(from)} both map to ${JSON.stringify(to)}; map each role to a role of its own`,
        FailureType.InvalidInput,
      );
    }
    mappedTo.set(to, from);
  }
  if (input.dryRun !== undefined && typeof input.dryRun !== 'boolean') {
    throw ApplicationFailure.nonRetryable('dryRun: expected true or false', FailureType.InvalidInput);
  }
  return {
    ...input,
    mode,
    ...(input.orgId !== undefined ? { orgId: parseOrgId(input.orgId, 'orgId') } : {}),
    ...(input.targetOrgId !== undefined ? { targetOrgId: parseOrgId(input.targetOrgId, 'targetOrgId') } : {}),
  };
}

/**
 * Brings an organization back from a backup — as itself, or as a clone under `targetOrgId`.
 * `into-empty` refuses a target with any data; `replace` takes a safety backup of the target first.
 * If any step fails, everything this restore wrote is removed and the target is put back as it was
 * (from the safety backup for `replace`); the failure names the step. Ends by comparing the target's
 * fingerprint with the manifest's.
 */
export async function restoreOrganization(rawInput: RestoreOrganizationInput & { dryRun: true }): Promise<RestorePlan>;
export async function restoreOrganization(rawInput: RestoreOrganizationInput): Promise<RestoreResult>;
export async function restoreOrganization(rawInput: RestoreOrganizationInput): Promise<RestoreResult | RestorePlan> {
  const input = parseInput(rawInput);
  // The dry run: the plan of what this restore would create and replace; nothing is changed.
  if (input.dryRun) return planRestore(input);
  const info = workflowInfo();
  const started = Date.now();
  const wanted = input.latest ? `the newest verified backup of ${input.orgId ?? '?'}` : (input.backupId ?? '');
  const progress: RestoreProgress = { step: 'locating the backup', backupId: input.backupId ?? wanted };
  setHandler(restoreProgressQuery, () => progress);
  const moveTo = trackProgress(progress, `restore of backup \`${input.backupId ?? wanted}\``);
  const compensations = new Compensations();

  const backup = await quick.locateBackup(
    input.latest
      ? { orgId: input.orgId, latest: true, verified: true }
      : { backupId: input.backupId, ...(input.orgId ? { orgId: input.orgId } : {}) },
  );
  progress.backupId = backup.backupId;
  const targetOrgId = input.targetOrgId ?? backup.orgId;
  Object.assign(progress, { sourceOrgId: backup.orgId, targetOrgId });
  upsertSearchAttributes([
    { key: OrgIdAttribute, value: targetOrgId },
    { key: OperationAttribute, value: 'restore' },
  ]);

  moveTo('checking');
  await quick.assertNoConflictingOperation({ orgId: targetOrgId, operations: ['restore', 'delete', 'backup'] });
  const deletion = await quick.findDeletionRecord(targetOrgId);
  if (deletion && !input.override) {
    throw ApplicationFailure.nonRetryable(
      `organization ${targetOrgId} was deleted by ${deletion.workflowId} (requested by ${deletion.requestedBy}: ${deletion.reason}); restoring it needs "override": {"reason": "..."}, which is recorded`,
      FailureType.RestoreRefused,
    );
  }
  // Hashing every artifact takes as long as the backup has bytes (scaled-timeouts.ts), so the
  // manifest is read first; runs recorded before keep the fixed limit and their order.
  // A manifest that cannot be read is reported by the check below, as before, naming what is wrong.
  const manifestFirst = patched(SCALED_ARTIFACT_CHECK)
    ? await quick.readBackupManifest(backup).catch(() => undefined)
    : undefined;
  const checking = manifestFirst
    ? hashingActivities(manifestFirst.artifacts.reduce((sum, a) => sum + a.bytes, 0))
    : quick;
  const problems = await checking.checkBackupArtifacts(backup);
  if (problems.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `backup ${backup.orgId}/${backup.backupId} is damaged: ${problems.join('; ')}`,
      FailureType.ChecksumMismatch,
    );
  }
  const manifest = manifestFirst ?? (await quick.readBackupManifest(backup));
  const roleMapping = input.roleMapping ?? {};
  if (manifest.stores.includes('postgres') && patched(CHECKS_POSTGRES_BEFORE_CHANGES)) {
    await quick.checkPostgresRestore({ orgId: backup.orgId, backupId: backup.backupId, targetOrgId, roleMapping });
  }
  const existing = await quick.summarizeOrganization(targetOrgId);
  if (input.mode === 'into-empty' && existing.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `target organization ${targetOrgId} is not empty, nothing was changed (use mode "replace" to overwrite it): ${existing.join('; ')}`,
      FailureType.RestoreRefused,
    );
  }
  if (deletion && input.override) {
    await quick.recordDeletionOverride({
      orgId: targetOrgId,
      restoreWorkflowId: info.workflowId,
      reason: input.override.reason,
    });
  }

  const staged = patched(STAGED_PROOF_BEFORE_TARGET);
  let stagedComparisons: ObjectComparison[] | undefined;
  if (staged) {
    // Proof first, beside everything live: a backup that does not load, or loads to other rows,
    // fails here and the target was never touched.
    moveTo('staging');
    stagedComparisons = await proveInScratch(backup, manifest, stagingNames(info.runId), targetOrgId, roleMapping);
  }

  let safetyBackupId: string | undefined;
  if (staged && input.mode === 'replace' && existing.length > 0) {
    moveTo('safety backup of the target');
    // Verified before anything of the target is dropped: it is what a failure puts back.
    const safety = await executeChild(backupOrganization, {
      workflowId: `${info.workflowId}-safety-backup`,
      args: [{ orgId: targetOrgId, reason: `safety backup before restore ${info.workflowId}`, verify: true }],
    }).catch((err: unknown) => {
      throw ApplicationFailure.nonRetryable(
        `restore of ${backup.orgId}/${backup.backupId} into ${targetOrgId} stopped: the safety backup (${info.workflowId}-safety-backup) failed or did not verify: ${rootMessage(err)}; nothing was changed, ${targetOrgId} is as it was`,
        FailureType.RestoreRefused,
      );
    });
    safetyBackupId = safety.backupId;
    progress.safetyBackupId = safetyBackupId;
    const asBefore = { orgId: targetOrgId, backupId: safetyBackupId, targetOrgId };
    compensations.add(`target ${targetOrgId} was put back from verified safety backup ${safetyBackupId}`, async () => {
      await restoring.restorePostgres(asBefore);
      await restoring.restoreClickHouse(asBefore);
    });
  } else if (input.mode === 'replace' && existing.length > 0) {
    moveTo('safety backup of the target');
    const safety = await executeChild(backupOrganization, {
      workflowId: `${info.workflowId}-safety-backup`,
      args: [{ orgId: targetOrgId, reason: `safety backup before restore ${info.workflowId}`, verify: false }],
    });
    safetyBackupId = safety.backupId;
    progress.safetyBackupId = safetyBackupId;
    // Runs last, after what this restore wrote is removed: the target as it was before.
    const asBefore = { orgId: targetOrgId, backupId: safetyBackupId, targetOrgId };
    compensations.add(`target ${targetOrgId} was put back from safety backup ${safetyBackupId}`, async () => {
      await restoring.restorePostgres(asBefore);
      await restoring.restoreClickHouse(asBefore);
    });
  }

  const restoreAs = {
    orgId: backup.orgId,
    backupId: backup.backupId,
    targetOrgId,
    ...(Object.keys(roleMapping).length > 0 ? { roleMapping } : {}),
  };
  let comparisons: ObjectComparison[];
  if (stagedComparisons && safetyBackupId !== undefined && patched(SWAP_BESIDE_ORIGINAL)) {
    await replaceBesideOriginal({
      restoreAs,
      stores: manifest.stores,
      safetyBackupId,
      names: swapNames(info.runId),
      moveTo,
      step: () => progress.step,
    });
    comparisons = stagedComparisons;
  } else {
    try {
      // Registered before the first write, so a restore that fails half-way is removed whole; newest
      // first, so PostgreSQL is cleared before ClickHouse, as it is restored first.
      compensations.add(`what this restore wrote into ClickHouse of ${targetOrgId} was removed`, () =>
        quick.clearOrganizationClickHouse({ orgId: targetOrgId }),
      );
      compensations.add(`what this restore wrote into PostgreSQL of ${targetOrgId} was removed`, () =>
        quick.clearOrganizationPostgres({ orgId: targetOrgId }),
      );
      if (manifest.stores.includes('postgres')) {
        moveTo('postgres');
        await restoring.restorePostgres(restoreAs);
      }
      if (manifest.stores.includes('clickhouse')) {
        moveTo('clickhouse');
        await restoring.restoreClickHouse(restoreAs);
      }
      if (stagedComparisons) {
        // The proof is the staged copy's: the live target may already be written to again.
        comparisons = stagedComparisons;
      } else {
        moveTo('fingerprint');
        // The target's roles are mapped back to the backup's names, so a mapped grant compares equal.
        const roleNames = Object.fromEntries(Object.entries(roleMapping).map(([from, to]) => [to, from]));
        const actual = await quick.fingerprintOrganization(targetOrgId, [...manifest.stores], {
          ...manifestRowHashes(manifest),
          roleNames,
        });
        comparisons = compareObjectFingerprints(manifest.fingerprint.objects, actual.objects);
        const differences = describeDifferences(comparisons);
        if (differences.length > 0) {
          throw ApplicationFailure.nonRetryable(
            `restored data differs from the manifest: ${differences.join('; ')}`,
            FailureType.VerificationFailed,
          );
        }
      }
    } catch (err) {
      const failedStep = progress.step;
      moveTo(`compensating after ${failedStep}`);
      // Both are reported: the failure, and each compensation's outcome (a failed one included).
      // Before this patch a failed compensation ended the run at once; runs begun then replay that way.
      const outcomes = await compensations.runAll({
        stopAtFirstFailure: !patched(COMPENSATIONS_CONTINUE_PAST_A_FAILURE),
      });
      moveTo('failed');
      const undone = describeCompensations(outcomes).join('; ');
      const failedCompensation = outcomes.some((o) => o.failure !== undefined);
      const safetyNote = safetyBackupId ? ` (verified safety backup ${safetyBackupId} holds it as it was)` : '';
      const notAsBefore = failedCompensation
        ? `; target ${targetOrgId} may NOT be as it was before${staged ? safetyNote : ''}`
        : staged
          ? `; target ${targetOrgId} is as it was before${safetyNote}`
          : '';
      throw ApplicationFailure.nonRetryable(
        `restore of ${backup.orgId}/${backup.backupId} into ${targetOrgId} failed at step "${failedStep}": ${rootMessage(err)}; ${undone}${notAsBefore}`,
        FailureType.StoreRejected,
      );
    }
  }

  if (deletion?.preDeletionBackupId && input.override) {
    // The deletion is no longer in effect: its backup is an ordinary backup again, pruned by policy.
    await quick.releaseBackupHold({ orgId: targetOrgId, backupId: deletion.preDeletionBackupId });
  }

  moveTo('done');
  return {
    backupId: backup.backupId,
    sourceOrgId: backup.orgId,
    targetOrgId,
    mode: input.mode,
    ...(safetyBackupId ? { safetyBackupId } : {}),
    comparisons,
    durationMs: Date.now() - started,
  };
}

/**
 * Loads the backup into scratch databases (never the target), fingerprints them with the manifest's
 * row hashes and compares object by object; the scratch databases are dropped whatever happens.
 * @throws `VerificationFailed` naming each difference, or the load's failure, saying nothing was changed.
 */
async function proveInScratch(
  backup: { orgId: string; backupId: string },
  manifest: Awaited<ReturnType<typeof quick.readBackupManifest>>,
  scratch: { postgres: string; clickhouse: string },
  targetOrgId: string,
  roleMapping: Record<string, string>,
): Promise<ObjectComparison[]> {
  const { orgId, backupId } = backup;
  const restored = { orgId, backupId, targetOrgId: orgId };
  // The staged copy gets the target's roles, as the real restore will; its fingerprint maps them back.
  const mapped = Object.keys(roleMapping).length > 0;
  const roleNames = Object.fromEntries(Object.entries(roleMapping).map(([from, to]) => [to, from]));
  const hashes = manifestRowHashes(manifest);
  const unchanged = `nothing was changed, ${targetOrgId} is as it was`;
  try {
    const waitForBoth = patched(PROOF_WAITS_FOR_BOTH_LOADS);
    const loads = [
      manifest.stores.includes('postgres')
        ? restoring.restorePostgres({
            ...restored,
            scratchDatabase: scratch.postgres,
            ...(mapped ? { roleMapping } : {}),
          })
        : undefined,
      manifest.stores.includes('clickhouse')
        ? restoring.restoreClickHouse({ ...restored, scratchDatabase: scratch.clickhouse })
        : undefined,
    ];
    if (waitForBoth) {
      // A failed load must not drop the scratch databases under the other, still running: its
      // connections would be ended mid-transaction (an unhandled pg client error in the worker).
      const failed = (await Promise.allSettled(loads)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    } else {
      await Promise.all(loads);
    }
    const [pg, ch] = await Promise.all([
      manifest.stores.includes('postgres')
        ? restoring.fingerprintPostgresScratch({
            orgId,
            database: scratch.postgres,
            rowHash: hashes.postgresRowHash,
            privileges: hashes.postgresPrivileges,
            ...(mapped ? { roleNames } : {}),
          })
        : [],
      manifest.stores.includes('clickhouse')
        ? restoring.fingerprintClickHouseScratch({
            orgId,
            database: scratch.clickhouse,
            rowHash: hashes.clickhouseRowHash,
          })
        : [],
    ]);
    const comparisons = compareObjectFingerprints(manifest.fingerprint.objects, [...pg, ...ch]);
    const differences = describeDifferences(comparisons);
    if (differences.length > 0)
      throw ApplicationFailure.nonRetryable(
        `restore of ${orgId}/${backupId} into ${targetOrgId} stopped: its staged copy differs from the manifest: ${differences.join('; ')}; ${unchanged}`,
        FailureType.VerificationFailed,
      );
    return comparisons;
  } catch (err) {
    if (err instanceof ApplicationFailure && err.type === FailureType.VerificationFailed) throw err;
    throw ApplicationFailure.nonRetryable(
      `restore of ${orgId}/${backupId} into ${targetOrgId} stopped while loading its staged copy: ${rootMessage(err)}; ${unchanged}`,
      FailureType.StoreRejected,
    );
  } finally {
    await CancellationScope.nonCancellable(() =>
      Promise.all([
        quick.dropPostgresScratch({ database: scratch.postgres }),
        quick.dropClickHouseScratch({ database: scratch.clickhouse }),
      ]),
    );
  }
}

/**
 * The load of a `replace` beside the original, under a verified safety backup: ClickHouse's tables
 * are staged on the target server and swapped in by RENAME (or, for objects RENAME cannot move on
 * ClickHouse 18, cleared and loaded, put back from the safety backup on failure); then PostgreSQL's
 * schemas are renamed aside in one transaction and the backup loaded under the real names, its
 * shared rows replaced in one transaction. A failure moves everything back by renaming; once the
 * new copy is in place, the set-aside originals are dropped, last.
 * @throws `StoreRejected` naming the failed step, what was undone, the safety backup and the state of the target.
 */
async function replaceBesideOriginal(run: {
  restoreAs: { orgId: string; backupId: string; targetOrgId: string; roleMapping?: Record<string, string> };
  stores: readonly string[];
  safetyBackupId: string;
  names: ReturnType<typeof swapNames>;
  moveTo: (step: string) => void;
  step: () => string;
}): Promise<void> {
  const { restoreAs, names, moveTo, safetyBackupId } = run;
  const target = restoreAs.targetOrgId;
  const source = `${restoreAs.orgId}/${restoreAs.backupId}`;
  const undo = new Compensations();
  const swap = { orgId: target, staging: names.clickhouseStaging, aside: names.clickhouseAside };
  let clickhouseCleared = false;
  try {
    if (run.stores.includes('clickhouse')) {
      moveTo('clickhouse: staging beside the target');
      const staging = await restoring.stageClickHouseSwap({ ...restoreAs, staging: names.clickhouseStaging });
      if (staging.swappable) {
        const moved = { ...swap, stagedTables: staging.stagedTables };
        undo.add(`ClickHouse tables of ${target} were renamed back`, () => quick.undoClickHouseSwap(moved));
        moveTo('clickhouse: swapping the tables in');
        await quick.swapClickHouseTables(moved);
      } else {
        // Not every object can be renamed on this server (see activities/clickhouse/swap.ts): this
        // store alone is cleared and loaded, and put back from the safety backup if a later step fails.
        const asBefore = { orgId: target, backupId: safetyBackupId, targetOrgId: target };
        undo.add(`ClickHouse of ${target} was put back from verified safety backup ${safetyBackupId}`, async () => {
          await quick.clearOrganizationClickHouse({ orgId: target });
          await restoring.restoreClickHouse(asBefore);
        });
        clickhouseCleared = true;
        moveTo(`clickhouse: cleared and loaded (${staging.reason})`);
        await restoring.restoreClickHouse(restoreAs);
      }
    }
    if (run.stores.includes('postgres')) {
      // Registered before the rename: if it committed but its answer was lost, it is still undone.
      undo.add(`PostgreSQL schemas of ${target} were renamed back, its shared rows left as they were`, () =>
        quick.putPostgresAsideBack({ orgId: target, prefix: names.postgresAside }),
      );
      moveTo('postgres: setting the schemas aside');
      await quick.setPostgresAside({ orgId: target, prefix: names.postgresAside });
      moveTo('postgres');
      await restoring.restorePostgres({ ...restoreAs, asidePrefix: names.postgresAside });
    }
  } catch (err) {
    const failedStep = run.step();
    moveTo(`compensating after ${failedStep}`);
    const outcomes = await undo.runAll();
    moveTo('failed');
    const undone = describeCompensations(outcomes).join('; ');
    const state = outcomes.some((o) => o.failure !== undefined)
      ? `target ${target} may NOT be as it was: its originals are in PostgreSQL schemas ${names.postgresAside}_* and ClickHouse database ${names.clickhouseAside}; verified safety backup ${safetyBackupId} holds it as it was`
      : outcomes.length === 0
        ? `target ${target} is as it was (nothing had been moved); verified safety backup ${safetyBackupId} holds it too`
        : clickhouseCleared
          ? `target ${target} is as it was (PostgreSQL renamed back, ClickHouse put back from verified safety backup ${safetyBackupId})`
          : `target ${target} is as it was (renamed back); verified safety backup ${safetyBackupId} holds it too`;
    throw ApplicationFailure.nonRetryable(
      `restore of ${source} into ${target} failed at step "${failedStep}": ${rootMessage(err)}; ${undone || 'nothing had been changed'}; ${state}`,
      FailureType.StoreRejected,
    );
  } finally {
    await CancellationScope.nonCancellable(() => quick.dropClickHouseScratch({ database: names.clickhouseStaging }));
  }

  // The new copy is in place: the originals are dropped, last. A failure here changes nothing back.
  moveTo('dropping the set-aside originals');
  try {
    await Promise.all([
      run.stores.includes('postgres') ? quick.dropPostgresAside({ prefix: names.postgresAside }) : undefined,
      run.stores.includes('clickhouse') ? quick.dropClickHouseAside({ aside: names.clickhouseAside }) : undefined,
    ]);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `restore of ${source} into ${target} is in place, but dropping its set-aside originals failed: ${rootMessage(err)}; drop PostgreSQL schemas ${names.postgresAside}_* and ClickHouse database ${names.clickhouseAside} by hand (verified safety backup ${safetyBackupId} holds them too)`,
      FailureType.StoreRejected,
    );
  }
}
