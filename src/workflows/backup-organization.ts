import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  executeChild,
  isCancellation,
  patched,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
} from '@temporalio/workflow';
import {
  BACKUP_PROGRESS_SIGNAL,
  BACKUP_STORES,
  type StoreProgressReport,
  type BackupOrganizationInput,
  type BackupProgress,
  type BackupStoreName,
  type BackupManifest,
  type BackupSummary,
  type StoreBackupResult,
} from '../contracts/backup';
import type { PreflightStore } from '../contracts/preflight';
import { FailureType } from '../errors';
import { parseOrgId } from '../platform/org-id';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';
import {
  glanceActivities,
  localGlanceActivities,
  localProbeActivities,
  localQuickActivities,
  probeActivities,
  quickActivities as quick,
  streamingActivities as streaming,
} from './shared/activity-proxies';
import { rootMessage } from './shared/failures';
import { allOrStopTheRest } from './shared/stop-the-rest';
import { hashingActivities } from './shared/scaled-timeouts';
import { platformPreflight } from './platform-preflight';
import { probeStores, type ProbeProxies } from './shared/preflight';
import { verifyBackup } from './verify-backup';
import { trackProgress } from './shared/progress';

export const backupProgressQuery = defineQuery<BackupProgress>('backupProgress');
export const backupArtifactProgressSignal = defineSignal<[StoreProgressReport]>(BACKUP_PROGRESS_SIGNAL);

/** Validates UI-typed input; a problem fails the run, non-retryable, naming the field. */
function parseInput(
  input: BackupOrganizationInput | undefined,
): Required<Omit<BackupOrganizationInput, 'verify'>> & { verify: boolean } {
  if (input === null || typeof input !== 'object') {
    throw ApplicationFailure.nonRetryable(
      'input: expected an object such as {"orgId": "acme"}',
      FailureType.InvalidInput,
    );
  }
  const orgId = parseOrgId(input.orgId, 'orgId');
  if (input.reason !== undefined && typeof input.reason !== 'string') {
    throw ApplicationFailure.nonRetryable('reason: expected a string', FailureType.InvalidInput);
  }
  const stores = input.stores ?? [...BACKUP_STORES];
  if (!Array.isArray(stores) || stores.length === 0 || stores.some((s) => !BACKUP_STORES.includes(s))) {
    throw ApplicationFailure.nonRetryable(
      `stores: expected a non-empty list of ${BACKUP_STORES.map((s) => `"${s}"`).join(', ')}; got ${JSON.stringify(stores)}`,
      FailureType.InvalidInput,
    );
  }
  if (input.verify !== undefined && typeof input.verify !== 'boolean') {
    throw ApplicationFailure.nonRetryable('verify: expected true or false', FailureType.InvalidInput);
  }
  return { orgId, reason: input.reason ?? 'on demand', stores: [...new Set(stores)], verify: input.verify ?? true };
}

/**
 * What the backup leaves out by design, counted for the manifest: messages on the queue and Redis
 * keys. A count is a glance (three short attempts), never a condition: a store that does not answer
 * is recorded as unavailable with its reason, and the backup goes on.
 */
async function countLeftOut(orgId: string, steps: ShortSteps): Promise<BackupManifest['ephemeral']> {
  const { counts } = steps;
  const [queue, redis] = await Promise.allSettled([counts.countQueueMessages(orgId), counts.countRedisKeys(orgId)]);
  for (const count of [queue, redis])
    if (count.status === 'rejected' && isCancellation(count.reason)) throw count.reason;
  const unavailable: NonNullable<BackupManifest['ephemeral']['unavailable']> = {};
  if (queue.status === 'rejected') unavailable.queue = rootMessage(queue.reason);
  if (redis.status === 'rejected') unavailable.redis = rootMessage(redis.reason);
  return {
    queue: queue.status === 'fulfilled' ? queue.value : [],
    redis: redis.status === 'fulfilled' ? redis.value : [],
    ...(unavailable.queue !== undefined || unavailable.redis !== undefined ? { unavailable } : {}),
  };
}

/**
 * Since issue 17 a backup probes its stores inline, at once with its two checks, and counts what it
 * leaves out while its stores are backed up: three rounds of activities instead of five and a
 * preflight child workflow (bench:platform, 100 small organizations: 62.0 s before, 42.6 s after,
 * the Temporal server's CPU per organization 0.30 s before, 0.17 s after). Runs started before
 * take the old steps.
 */
export const BACKUP_IN_FEWER_ROUNDS_PATCH = 'backup-organization-fewer-rounds';

/**
 * Since issue 17 the backup's short steps (the probes, the two checks and the two counts) run as
 * local activities: same calls, timeouts and retries, one marker each in the history instead of
 * three events and a workflow task. bench:platform, 100 small organizations: see the README.
 * And a store backup that fails stops the other before the partial backup is discarded: before,
 * the other ran on after the discard and the run's end and wrote its artifacts into a folder
 * nothing would remove (a File table in ClickHouse failed the backup in milliseconds, PostgreSQL's
 * dump landed a second later). One patch for both: each patch costs every run a marker and a
 * search-attribute update. Runs started before keep regular activities and Promise.all.
 */
export const BACKUP_LOCAL_STEPS_PATCH = 'backup-organization-local-steps';

type ConflictCheck = Parameters<typeof quick.assertNoConflictingOperation>[0];

/** The proxies of the backup's short steps: regular activities, or local ones since the patch above. */
interface ShortSteps {
  probes: ProbeProxies;
  checks: Pick<typeof quick, 'assertOrganizationExists' | 'assertNoConflictingOperation'>;
  counts: Pick<typeof glanceActivities, 'countQueueMessages' | 'countRedisKeys'>;
}
const REGULAR_STEPS: ShortSteps = { probes: probeActivities, checks: quick, counts: glanceActivities };
const LOCAL_STEPS: ShortSteps = {
  probes: localProbeActivities,
  checks: localQuickActivities,
  counts: localGlanceActivities,
};

/**
 * The preflight and the checks in one round: all three only read, so they run at once. A store that
 * does not answer fails the run as the preflight's failure (one message naming every such store),
 * before whatever the checks said, and cancels the checks: one that reads the dead store would
 * otherwise hold the failure back through its own ten retries (2.5 min with PostgreSQL down).
 */
async function preflightAndChecks(
  stores: PreflightStore[],
  orgId: string,
  conflicts: ConflictCheck,
  steps: ShortSteps,
): Promise<void> {
  // The probes are scheduled first, then the checks: the order recorded histories replay.
  const probing = probeStores(stores, steps.probes);
  probing.catch(() => undefined);
  const checks = new CancellationScope();
  const checking = checks.run(() =>
    Promise.all([steps.checks.assertOrganizationExists(orgId), steps.checks.assertNoConflictingOperation(conflicts)]),
  );
  checking.catch(() => undefined);
  try {
    await probing;
  } catch (err) {
    checks.cancel();
    throw err;
  }
  await checking;
}

/** `20261130T020304Z-1a2b3c4d`: sorts by time, unique per run, safe as a folder name. */
function newBackupId(now: Date): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z')}-${uuid4().slice(0, 8)}`;
}

/**
 * Backs up one organization: preflight and checks (it exists, nothing conflicts) → every durable
 * store in parallel, counting what is left out meanwhile → commit the manifest (last, atomically).
 * A failure removes what this run wrote, so no half backup is left that anyone could mistake for one.
 */
export async function backupOrganization(rawInput: BackupOrganizationInput): Promise<BackupSummary> {
  const input = parseInput(rawInput);
  const info = workflowInfo();
  upsertSearchAttributes([
    { key: OrgIdAttribute, value: input.orgId },
    { key: OperationAttribute, value: 'backup' },
  ]);
  const started = new Date();
  const backupId = newBackupId(started);
  const progress: BackupProgress = { backupId, orgId: input.orgId, step: 'preflight', artifacts: [] };
  setHandler(backupProgressQuery, () => progress);
  const moveTo = trackProgress(progress, `backup \`${backupId}\` of \`${input.orgId}\``);
  // Activities report artifacts still being written; finished ones replace them by store and object.
  const record = (artifacts: BackupProgress['artifacts']) => {
    for (const artifact of artifacts) {
      const at = progress.artifacts.findIndex((a) => a.store === artifact.store && a.object === artifact.object);
      if (at === -1) progress.artifacts.push(artifact);
      else if (!progress.artifacts[at]?.done) progress.artifacts[at] = artifact;
    }
  };
  setHandler(backupArtifactProgressSignal, (report) => record(report.artifacts));

  // Only the stores this backup reads must answer: PostgreSQL (it holds the organization row) and
  // the stores backed up. The queue and Redis are never backed up, so their outage never blocks one.
  const touched: PreflightStore[] = [...new Set<PreflightStore>(['postgres', ...input.stores])];
  // A restore or deletion in flight would make this backup a mix of before and after.
  const parent = info.parent?.workflowId;
  const conflicts: ConflictCheck = {
    orgId: input.orgId,
    operations: ['restore', 'delete'],
    allowWorkflowIds: parent ? [parent] : [],
  };
  const inFewerRounds = patched(BACKUP_IN_FEWER_ROUNDS_PATCH);
  const localStepsAndStop = inFewerRounds && patched(BACKUP_LOCAL_STEPS_PATCH);
  const steps = localStepsAndStop ? LOCAL_STEPS : REGULAR_STEPS;
  if (inFewerRounds) {
    await preflightAndChecks(touched, input.orgId, conflicts, steps);
  } else {
    await executeChild(platformPreflight, { workflowId: `${info.workflowId}-preflight`, args: [{ stores: touched }] });
    moveTo('checking');
    await quick.assertOrganizationExists(input.orgId);
    await quick.assertNoConflictingOperation(conflicts);
  }

  moveTo('backing-up');
  const backupOne = (store: BackupStoreName): Promise<StoreBackupResult> =>
    store === 'postgres'
      ? streaming.backupPostgres({ orgId: input.orgId, backupId })
      : streaming.backupClickHouse({ orgId: input.orgId, backupId });
  let results: StoreBackupResult[];
  try {
    const backUpStore = async (store: BackupStoreName): Promise<StoreBackupResult> => {
      const result = await backupOne(store);
      record(result.artifacts.map((a) => ({ store, object: a.object, bytes: a.rawBytes, rows: a.rows, done: true })));
      return result;
    };
    const backUpStores = () =>
      localStepsAndStop
        ? allOrStopTheRest(input.stores.map((store) => () => backUpStore(store)))
        : Promise.all(input.stores.map(backUpStore));
    let ephemeral: BackupManifest['ephemeral'];
    if (inFewerRounds) {
      // What the backup leaves out is counted while it runs: a count is of no particular moment.
      [results, ephemeral] = await Promise.all([backUpStores(), countLeftOut(input.orgId, steps)]);
    } else {
      results = await backUpStores();
      ephemeral = await countLeftOut(input.orgId, steps);
    }
    moveTo('committing');
    // The commit re-hashes every artifact: its time limit grows with their bytes.
    const storedBytes = results.reduce((sum, r) => sum + r.artifacts.reduce((n, a) => n + a.bytes, 0), 0);
    await hashingActivities(storedBytes).commitBackup({
      orgId: input.orgId,
      backupId,
      workflowId: info.workflowId,
      reason: input.reason,
      startedAt: started.toISOString(),
      stores: input.stores,
      results,
      ephemeral,
    });
  } catch (err) {
    moveTo('failed');
    // Even a cancelled run removes its partial artifacts: nothing half-written may outlive it.
    await CancellationScope.nonCancellable(() => quick.discardIncompleteBackup({ orgId: input.orgId, backupId }));
    throw err;
  }

  let verification: BackupSummary['verification'];
  if (input.verify) {
    moveTo('verifying');
    // A failed verification fails this run too: the backup stays, marked failed in verification.json.
    const verifyId = `${info.workflowId}-verify`;
    await executeChild(verifyBackup, { workflowId: verifyId, args: [{ orgId: input.orgId, backupId }] });
    verification = { passed: true, workflowId: verifyId };
  }

  moveTo('done');
  const artifacts = results.flatMap((r) => r.artifacts);
  const keyId = artifacts.find((a) => a.keyId)?.keyId;
  return {
    backupId,
    orgId: input.orgId,
    location: `${input.orgId}/${backupId}`,
    artifacts: artifacts.length,
    bytes: artifacts.reduce((sum, a) => sum + a.bytes, 0),
    rows: artifacts.reduce((sum, a) => sum + (a.rows ?? 0), 0),
    durationMs: Date.now() - started.getTime(),
    resumedArtifacts: results.reduce((sum, r) => sum + r.resumedArtifacts, 0),
    ...(keyId ? { keyId } : {}),
    ...(verification ? { verification } : {}),
  };
}
