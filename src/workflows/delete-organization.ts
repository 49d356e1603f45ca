import {
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  DELETION_DEFAULTS,
  deletionWorkflowId,
  parseDurationMs,
  PURGE_STEPS,
  type CancelDeletionSignal,
  type DeleteOrganizationInput,
  type DeleteOrganizationResult,
  type DeletionCertificate,
  type DeletionStatus,
  type DeletionStep,
  type OperatorDecisionSignal,
  type ParkedState,
  type PurgeStep,
  type RemovedCounts,
} from '../contracts/deletion';
import { FailureType, NON_RETRYABLE_FAILURE_TYPES } from '../errors';
import { parseOrgId } from '../platform/org-id';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';
import { backupOrganization } from './backup-organization';
import { platformPreflight } from './platform-preflight';
import { shredOrganizationBackups } from './shred-organization-backups';

export const deletionStatusQuery = defineQuery<DeletionStatus>('deletionStatus');
export const cancelDeletionSignal = defineSignal<[CancelDeletionSignal]>('cancelDeletion');
export const retryNowSignal = defineSignal<[OperatorDecisionSignal]>('retryNow');
export const abandonSignal = defineSignal<[OperatorDecisionSignal]>('abandon');

/** Failure type of a deletion an operator abandoned after the point of no return. */
export const DELETION_ABANDONED = 'DeletionAbandoned';

const quick = proxyActivities<Activities>({
  startToCloseTimeout: '2m',
  heartbeatTimeout: '30s',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10, nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES] },
});

const glance = proxyActivities<Activities>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumAttempts: 3, nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES] },
});

/** Residue found after this many re-purges parks the run: something keeps writing the organization's data. */
const MAX_RESIDUE_ROUNDS = 3;

interface ParsedInput {
  orgId: string;
  requestedBy: string;
  reason: string;
  skipBackup: boolean;
  gracePeriod: string;
  gracePeriodMs: number;
  backupRetention: string;
  backupRetentionMs: number;
  storeDownAfterMs: number;
  parkedRetryIntervalMs: number;
  reapplyingDeletionRunId?: string;
}

function invalid(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(`${message}; nothing was changed`, FailureType.InvalidInput);
}

/** Checks the input before anything happens; every problem names its field. */
function parseInput(input: DeleteOrganizationInput | undefined): ParsedInput {
  if (input === null || typeof input !== 'object') {
    throw invalid('input: expected an object such as {"orgId": "acme", "confirmOrgId": "acme", "requestedBy": "ops@example.com", "reason": "contract ended"}');
  }
  const orgId = parseOrgId(input.orgId, 'orgId');
  if (input.confirmOrgId !== orgId) {
    throw invalid(`confirmOrgId: ${JSON.stringify(input.confirmOrgId ?? null)} does not match orgId ${JSON.stringify(orgId)}`);
  }
  const text = (field: 'requestedBy' | 'reason') => {
    const value = input[field];
    if (typeof value !== 'string' || value.trim() === '') throw invalid(`${field}: expected a non-empty string (it is recorded in the deletion certificate)`);
    return value.trim();
  };
  const requestedBy = text('requestedBy');
  const reason = text('reason');
  if (input.skipBackup !== undefined && typeof input.skipBackup !== 'boolean') throw invalid('skipBackup: expected true or false');
  const duration = (field: 'gracePeriod' | 'backupRetention' | 'storeDownAfter' | 'parkedRetryInterval') => {
    const value = input[field] ?? DELETION_DEFAULTS[field];
    try {
      return { text: value, ms: parseDurationMs(value, field) };
    } catch (err) {
      throw invalid(err instanceof Error ? err.message : String(err));
    }
  };
  const grace = duration('gracePeriod');
  const retention = duration('backupRetention');
  const storeDownAfter = duration('storeDownAfter');
  const parkedRetry = duration('parkedRetryInterval');
  if (storeDownAfter.ms < 1_000) throw invalid('storeDownAfter: expected at least 1s');
  if (parkedRetry.ms < 1_000) throw invalid('parkedRetryInterval: expected at least 1s');
  return {
    orgId,
    requestedBy,
    reason,
    skipBackup: input.skipBackup ?? false,
    gracePeriod: grace.text,
    gracePeriodMs: grace.ms,
    backupRetention: retention.text,
    backupRetentionMs: retention.ms,
    storeDownAfterMs: storeDownAfter.ms,
    parkedRetryIntervalMs: parkedRetry.ms,
    ...(typeof input.reapplyingDeletionRunId === 'string' ? { reapplyingDeletionRunId: input.reapplyingDeletionRunId } : {}),
  };
}

/** The innermost failure of a chain (activity → application failure; child → its cause …). */
function rootCause(err: unknown): { message: string; type: string | undefined } {
  let current: unknown = err;
  let type: string | undefined;
  let message = err instanceof Error ? err.message : String(err);
  for (let depth = 0; depth < 10 && current instanceof Error; depth++) {
    if (current instanceof ApplicationFailure && current.type) type = current.type;
    if (current.message) message = current.message;
    current = current.cause;
  }
  return { message, type };
}

/** Private signal from a step to the workflow's catch: the operator cancelled during the grace period. */
class DeletionCancelled extends Error {
  override readonly name = 'DeletionCancelled';
}

/**
 * Deletes one organization from every store, provably, and only after a verified backup:
 *
 * validate → preflight → backup + verify → hold the backup, mark `deleting`, revoke sessions →
 * grace period (`cancelDeletion` undoes the mark) → POINT OF NO RETURN → queue → Redis → ClickHouse →
 * PostgreSQL schemas → shared rows, organization row last → residue check → certificate → (child,
 * after the retention) crypto-shredding of the organization's backups.
 *
 * Before the point of no return every change has a compensation, run in reverse on failure or
 * cancellation; sessions stay revoked (users log in again). After it, each purge step is idempotent
 * and retried with backoff; a step failing for longer than `storeDownAfter` parks the run, visible in
 * the `deletionStatus` query, the memo and the UI's current details, until `retryNow` or `abandon`.
 * The workflow id must be `delete-org-<orgId>`, so a second deletion of one organization cannot start.
 */
export async function deleteOrganization(rawInput: DeleteOrganizationInput): Promise<DeleteOrganizationResult> {
  const info = workflowInfo();
  const input = parseInput(rawInput);
  const { orgId } = input;
  upsertSearchAttributes([
    { key: OrgIdAttribute, value: orgId },
    { key: OperationAttribute, value: 'delete' },
  ]);
  const requestedAt = new Date().toISOString();
  const status: DeletionStatus = {
    orgId,
    workflowId: info.workflowId,
    step: 'validating',
    requestedBy: input.requestedBy,
    reason: input.reason,
    purge: {
      queue: { state: 'pending', rounds: 0 },
      redis: { state: 'pending', rounds: 0 },
      clickhouse: { state: 'pending', rounds: 0 },
      'postgres-schemas': { state: 'pending', rounds: 0 },
      'postgres-shared-rows': { state: 'pending', rounds: 0 },
    },
    notes: [],
  };
  let gracePeriodEndsAtMs: number | undefined;
  let cancelRequest: (CancelDeletionSignal & { at: string }) | undefined;
  let decision: { kind: 'retry' | 'abandon'; signal: OperatorDecisionSignal } | undefined;
  let pointOfNoReturn = false;

  setHandler(deletionStatusQuery, () => ({
    ...status,
    ...(gracePeriodEndsAtMs !== undefined && status.step === 'grace-period' ? { timeLeftMs: Math.max(0, gracePeriodEndsAtMs - Date.now()) } : {}),
  }));
  setHandler(cancelDeletionSignal, (signal) => {
    if (pointOfNoReturn) {
      status.notes.push(`cancelDeletion by ${signal.by} ignored: the point of no return was passed at ${status.pointOfNoReturnAt ?? '?'}`);
      return;
    }
    cancelRequest ??= { by: String(signal.by), reason: String(signal.reason), at: new Date().toISOString() };
  });
  const operatorSignal = (kind: 'retry' | 'abandon') => (signal: OperatorDecisionSignal) => {
    if (status.parked === undefined) {
      status.notes.push(`${kind === 'retry' ? 'retryNow' : 'abandon'} by ${signal.by} ignored: the deletion is not parked (step ${status.step})`);
      return;
    }
    decision ??= { kind, signal: { by: String(signal.by), reason: String(signal.reason) } };
  };
  // A function, so the compiler does not narrow `decision` to its last assignment across awaits.
  const takeDecision = (): typeof decision => {
    const made = decision;
    decision = undefined;
    return made;
  };
  setHandler(retryNowSignal, operatorSignal('retry'));
  setHandler(abandonSignal, operatorSignal('abandon'));

  const enter = (step: DeletionStep, details?: string) => {
    status.step = step;
    setCurrentDetails(`**${step}** — deletion of \`${orgId}\`${details ? `: ${details}` : ''}`);
  };

  // ---------------------------------------------------------------- before the point of no return
  const compensations: Array<{ what: string; run: () => Promise<unknown> }> = [];
  const compensate = async (): Promise<string[]> => {
    const done: string[] = [];
    // Even a cancelled workflow must put the organization back: compensations cannot be cancelled.
    await CancellationScope.nonCancellable(async () => {
      for (const c of [...compensations].reverse()) {
        try {
          await c.run();
          done.push(c.what);
        } catch (err) {
          // A failed compensation is reported, never hidden.
          done.push(`FAILED: ${c.what}: ${rootCause(err).message}`);
        }
      }
    });
    return done;
  };
  const checkCancelled = () => {
    if (cancelRequest) throw new DeletionCancelled();
  };
  let preDeletionBackup: DeletionCertificate['backup'] | undefined;
  let sessionsRevoked = 0;
  let foundAtPointOfNoReturn: string[] = [];

  try {
    enter('validating');
    if (info.workflowId !== deletionWorkflowId(orgId)) {
      throw invalid(`workflow id: expected ${JSON.stringify(deletionWorkflowId(orgId))}, got ${JSON.stringify(info.workflowId)} (one id per organization keeps two deletions from running at once)`);
    }
    if (input.reapplyingDeletionRunId !== undefined) {
      // A restore may have brought back some stores and not the organization row.
      const found = await quick.describeForDeletion(orgId);
      if (!found.exists) {
        throw ApplicationFailure.nonRetryable(`organization ${JSON.stringify(orgId)} has nothing left in any store; nothing to delete again; nothing was changed`, FailureType.UnknownOrganization);
      }
    } else {
      await quick.assertOrganizationExists(orgId);
    }
    const parent = info.parent?.workflowId;
    await quick.assertNoConflictingOperation({ orgId, operations: ['restore', 'delete', 'backup'], allowWorkflowIds: parent ? [parent] : [] });
    checkCancelled();

    enter('preflight');
    await executeChild(platformPreflight, { workflowId: `${info.workflowId}-preflight`, args: [{}] });
    checkCancelled();

    enter('backing-up');
    if (input.skipBackup) {
      preDeletionBackup = { skipped: true, reason: input.reason };
      status.backupSkipped = { reason: input.reason };
    } else {
      // A failed verification fails the child and so this run, before anything was changed.
      const summary = await executeChild(backupOrganization, {
        workflowId: `${info.workflowId}-backup`,
        args: [{ orgId, reason: `pre-deletion backup (${info.workflowId}): ${input.reason}`, verify: true }],
      });
      status.backupId = summary.backupId;
      const facts = await quick.preDeletionBackupFacts({ orgId, backupId: summary.backupId });
      preDeletionBackup = { ...facts, verified: facts.verified || summary.verification?.passed === true };
    }
    checkCancelled();

    enter('marking-deleting');
    const previousStatus = await quick.readOrganizationStatus(orgId);
    if (previousStatus !== undefined) {
      status.previousStatus = previousStatus;
      // Registered before the call: if the mark committed but its answer was lost, the compare-and-set
      // compensation still puts the status back, and if it never committed it changes nothing.
      compensations.push({ what: `status restored to ${JSON.stringify(previousStatus)}`, run: () => quick.restoreOrganizationStatus({ orgId, status: previousStatus }) });
      await quick.markOrganizationDeleting({ orgId, expected: previousStatus });
    }
    // Not compensated, by design: a revoked session cannot be given back; users log in again.
    sessionsRevoked = await quick.revokeOrganizationSessions(orgId);
    status.sessionsRevoked = sessionsRevoked;
    checkCancelled();

    enter('grace-period', `until a \`cancelDeletion\` signal or ${input.gracePeriod} pass`);
    if (input.gracePeriodMs > 0) {
      gracePeriodEndsAtMs = Date.now() + input.gracePeriodMs;
      status.gracePeriodEndsAt = new Date(gracePeriodEndsAtMs).toISOString();
      upsertMemo({ deletion: `grace period until ${status.gracePeriodEndsAt}; cancel with the cancelDeletion signal` });
      await condition(() => cancelRequest !== undefined, input.gracePeriodMs);
    }
    checkCancelled();

    // The hold comes last before the point of no return: until here the backup is the newest one of
    // the organization (no backup may start while a deletion runs) and pruning never removes the
    // newest, so a cancelled deletion leaves no hold behind.
    // Informational only: a store that is down now is the purge's business (it retries and parks),
    // so a failed description is recorded and the deletion goes on.
    foundAtPointOfNoReturn = await glance
      .describeForDeletion(orgId)
      .then((d) => d.lines)
      .catch((err: unknown) => [`not described at the point of no return: ${rootCause(err).message}`]);
    checkCancelled();
    if (status.backupId !== undefined) {
      await quick.holdBackup({ orgId, backupId: status.backupId, heldBy: info.workflowId, reason: `pre-deletion backup of ${orgId}, kept ${input.backupRetention}` });
    }
  } catch (err) {
    if (err instanceof DeletionCancelled && cancelRequest) {
      const undone = await compensate();
      status.cancelled = cancelRequest;
      enter('cancelled', `by ${cancelRequest.by}: ${cancelRequest.reason}`);
      upsertMemo({ deletion: `cancelled by ${cancelRequest.by}: ${cancelRequest.reason}` });
      status.notes.push(`compensations: ${undone.join('; ') || 'none needed'}; sessions stay revoked`);
      return {
        outcome: 'cancelled',
        orgId,
        cancelled: cancelRequest,
        restoredStatus: status.previousStatus ?? 'unknown',
        ...(status.backupId ? { backupId: status.backupId } : {}),
        sessionsRevoked,
      };
    }
    const failedStep = status.step;
    const undone = await compensate();
    const cause = rootCause(err);
    status.failure = { step: failedStep, message: cause.message, compensations: undone };
    enter('failed', `at ${failedStep}: ${cause.message}`);
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.create({
      type: cause.type ?? 'DeletionFailed',
      nonRetryable: true,
      message:
        `deletion of organization ${JSON.stringify(orgId)} stopped at step ${failedStep} before the point of no return: ${cause.message}` +
        (undone.length > 0 ? `; compensated: ${undone.join('; ')}` : '') +
        '; no data was deleted',
      cause: err instanceof Error ? err : undefined,
    });
  }

  // ---------------------------------------------------------------- the point of no return
  pointOfNoReturn = true;
  status.pointOfNoReturnAt = new Date().toISOString();
  if (cancelRequest) status.notes.push(`cancelDeletion by ${cancelRequest.by} at ${cancelRequest.at} came after the grace period ended; ignored`);
  enter('purging');
  upsertMemo({ deletion: `purging since ${status.pointOfNoReturnAt}` });
  // The whole run id: run ids are time-ordered (UUIDv7), so a prefix of two close runs is the same.
  const shredWorkflowId = `${info.workflowId}-shred-${info.runId}`;
  const certificate: DeletionCertificate = {
    formatVersion: 1,
    orgId,
    workflowId: info.workflowId,
    runId: info.runId,
    status: 'purging',
    requestedBy: input.requestedBy,
    reason: input.reason,
    requestedAt,
    pointOfNoReturnAt: status.pointOfNoReturnAt,
    ...(input.reapplyingDeletionRunId ? { reappliedDeletionRunId: input.reapplyingDeletionRunId } : {}),
    backup: preDeletionBackup ?? { skipped: true, reason: input.reason },
    foundAtPointOfNoReturn,
    steps: [],
    removed: { queue: {}, redis: {}, clickhouse: {}, postgres: {} },
    retention: {
      backupRetention: input.backupRetention,
      endsAt: new Date(Date.now() + input.backupRetentionMs).toISOString(),
      shredWorkflowId,
    },
  };

  // A step fails fast only for what retrying cannot fix; everything else is retried with backoff
  // for `storeDownAfter`, then the run parks for an operator.
  const untilDone = proxyActivities<Activities>({
    scheduleToCloseTimeout: input.storeDownAfterMs,
    startToCloseTimeout: input.storeDownAfterMs,
    heartbeatTimeout: '20s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES] },
  });

  class Abandoned extends Error {
    override readonly name = 'Abandoned';
  }

  /** Waits for `retryNow`, `abandon` or the automatic retry; returns normally to retry. */
  const park = async (step: ParkedState['step'], reason: string): Promise<void> => {
    status.parked = { step, since: new Date().toISOString(), reason, signals: ['retryNow', 'abandon'] };
    upsertMemo({ deletion: `PARKED at ${step}: ${reason} — send retryNow or abandon {by, reason}` });
    setCurrentDetails(`**PARKED** at \`${step}\`: ${reason}\n\nSend the \`retryNow\` or \`abandon\` signal with \`{"by": "...", "reason": "..."}\`; retried automatically every ${input.parkedRetryIntervalMs / 1000} s.`);
    decision = undefined;
    await condition(() => decision !== undefined, input.parkedRetryIntervalMs);
    const made = takeDecision();
    status.parked = undefined;
    upsertMemo({ deletion: `purging since ${status.pointOfNoReturnAt ?? ''}` });
    setCurrentDetails(`**${status.step}** — deletion of \`${orgId}\``);
    if (made?.kind === 'abandon') {
      status.notes.push(`abandoned at ${step} by ${made.signal.by}: ${made.signal.reason}`);
      certificate.abandoned = { by: made.signal.by, reason: made.signal.reason, at: new Date().toISOString(), step };
      throw new Abandoned(`abandoned at ${step} by ${made.signal.by}: ${made.signal.reason}`);
    }
    status.notes.push(made ? `retryNow at ${step} by ${made.signal.by}: ${made.signal.reason}` : `retried ${step} automatically after being parked`);
  };

  /** Runs `work` until it succeeds, parking between rounds that failed for `storeDownAfter`. */
  const untilSucceeded = async <T>(step: ParkedState['step'], work: () => Promise<T>, onFailure?: (message: string) => void): Promise<T> => {
    for (;;) {
      try {
        return await work();
      } catch (err) {
        const message = rootCause(err).message;
        onFailure?.(message);
        await park(step, message);
      }
    }
  };

  const PURGE: Record<PurgeStep, (orgId: string) => Promise<RemovedCounts>> = {
    queue: (id) => untilDone.purgeOrganizationQueue(id),
    redis: (id) => untilDone.purgeOrganizationRedis(id),
    clickhouse: (id) => untilDone.purgeOrganizationClickHouse(id),
    'postgres-schemas': (id) => untilDone.purgeOrganizationSchemas(id),
    'postgres-shared-rows': (id) => untilDone.purgeOrganizationSharedRows(id),
  };
  const STORE_OF: Record<PurgeStep, keyof DeletionCertificate['removed']> = {
    queue: 'queue',
    redis: 'redis',
    clickhouse: 'clickhouse',
    'postgres-schemas': 'postgres',
    'postgres-shared-rows': 'postgres',
  };
  const addCounts = (into: RemovedCounts, counts: RemovedCounts) => {
    for (const [key, n] of Object.entries(counts)) into[key] = (into[key] ?? 0) + n;
  };

  const purgeStep = async (step: PurgeStep): Promise<void> => {
    const s = status.purge[step];
    s.startedAt ??= new Date().toISOString();
    const removed = await untilSucceeded(
      step,
      () => {
        s.state = 'running';
        s.rounds++;
        return PURGE[step](orgId);
      },
      (message) => {
        s.state = 'parked';
        s.lastError = message;
      },
    );
    s.state = 'done';
    s.finishedAt = new Date().toISOString();
    s.removed = { ...(s.removed ?? {}) };
    addCounts(s.removed, removed);
    addCounts(certificate.removed[STORE_OF[step]], removed);
    const entry = certificate.steps.find((e) => e.step === step);
    if (entry) {
      entry.finishedAt = s.finishedAt;
      entry.rounds = s.rounds;
      addCounts(entry.removed, removed);
    } else {
      certificate.steps.push({ step, startedAt: s.startedAt, finishedAt: s.finishedAt, rounds: s.rounds, removed: { ...removed } });
    }
  };

  const record = () => untilSucceeded('certificate', () => untilDone.recordDeletionCertificate(certificate));

  // A Temporal cancel cannot stop what must finish: only `abandon` ends a run after this line.
  return CancellationScope.nonCancellable(async (): Promise<DeleteOrganizationResult> => {
    try {
      // The log entry first: from now on a restore refuses this organization, even if this run dies.
      await record();
      for (const step of PURGE_STEPS) await purgeStep(step);

      enter('residue-check');
      let check = await untilSucceeded('residue-check', () => untilDone.describeForDeletion(orgId));
      const found = [...check.lines];
      const purgedAgain = new Set<PurgeStep>();
      for (let round = 1; check.exists; round++) {
        if (round > MAX_RESIDUE_ROUNDS) {
          await park('residue-check', `residue remains after ${MAX_RESIDUE_ROUNDS} re-purges: ${check.lines.join('; ')}`);
          round = 1;
        }
        // Something wrote the organization's data after its purge (a late message, a cache fill): purge that store again.
        for (const step of PURGE_STEPS.filter((s) => check.steps.includes(s))) {
          purgedAgain.add(step);
          await purgeStep(step);
        }
        check = await untilSucceeded('residue-check', () => untilDone.describeForDeletion(orgId));
      }
      certificate.residueCheck = { clean: true, checkedAt: new Date().toISOString(), found, purgedAgain: [...purgedAgain] };
      if (found.length > 0) status.notes.push(`residue found and purged again: ${found.join('; ')}`);

      enter('certifying');
      certificate.status = 'completed';
      certificate.completedAt = new Date().toISOString();
      await record();
      // The shredding waits out the retention in a child of its own, so this run ends now and its
      // history stays small; the child outlives it (ABANDON) and updates the certificate.
      await startChild(shredOrganizationBackups, {
        workflowId: shredWorkflowId,
        parentClosePolicy: ParentClosePolicy.ABANDON,
        args: [{ orgId, deletionRunId: info.runId, retention: input.backupRetention }],
      });
      status.certificate = certificate;
      enter('done', `certificate ${info.runId}`);
      upsertMemo({ deletion: `deleted; certificate ${info.runId}; backups shredded after ${certificate.retention.endsAt}` });
      return { outcome: 'deleted', certificate };
    } catch (err) {
      if (!(err instanceof Abandoned)) throw err;
      certificate.status = 'abandoned';
      status.certificate = certificate;
      enter('abandoned', err.message);
      // The abandonment itself must reach the log; this cannot park (the operator just ended parking).
      await quick.recordDeletionCertificate(certificate).catch((recordErr: unknown) => {
        status.notes.push(`the abandoned certificate could not be recorded: ${rootCause(recordErr).message}`);
      });
      const left = PURGE_STEPS.filter((s) => status.purge[s].state !== 'done');
      throw ApplicationFailure.nonRetryable(
        `deletion of organization ${JSON.stringify(orgId)} ${err.message}; after the point of no return; not purged: ${left.join(', ') || 'none (residue check)'}`,
        DELETION_ABANDONED,
      );
    }
  });
}
