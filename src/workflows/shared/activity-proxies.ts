// Every activity proxy of every workflow, built here: the timeouts by kind of call, and the failure
// types no retry can fix listed once. Workflow-safe: types and proxies only.
import {
  ActivityCancellationType,
  proxyActivities,
  proxyLocalActivities,
  type ActivityInterfaceFor,
  type ActivityOptions,
  type RetryPolicy,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import { NON_RETRYABLE_FAILURE_TYPES } from '../../errors';

/** Activity options without `nonRetryableErrorTypes`, which {@link activityProxies} always adds. */
export type ActivityKind = Omit<ActivityOptions, 'retry'> & { retry: Omit<RetryPolicy, 'nonRetryableErrorTypes'> };

/** Backoff from 1 s to 30 s, 10 attempts: calls that are quick when the store answers. */
const SHORT_BACKOFF = { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 } as const;
/** Backoff from 2 s to 1 min, 10 attempts: calls that move backups around. */
const LONG_BACKOFF = { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 10 } as const;
/** Backoff from 1 s to 15 s, 6 attempts: the Kubernetes API. */
const KUBERNETES_BACKOFF = {
  initialInterval: '1s',
  backoffCoefficient: 2,
  maximumInterval: '15s',
  maximumAttempts: 6,
} as const;

/** The kinds of activity call the workflows make, each with its timeouts and backoff. */
export const ACTIVITY_KINDS = {
  /** Checks, listings, manifests, fingerprints: up to 10 min each. */
  quick: { startToCloseTimeout: '10m', retry: SHORT_BACKOFF },
  /** A saga's small steps (marks, holds, the deletion log): 2 min, heartbeating, a lost worker noticed in 30 s. */
  sagaStep: { startToCloseTimeout: '2m', heartbeatTimeout: '30s', retry: SHORT_BACKOFF },
  /** A look that must not hold the run up: 1 min, 3 attempts. */
  glance: { startToCloseTimeout: '1m', retry: { initialInterval: '1s', maximumAttempts: 3 } },
  /** Listing organizations: 1 min. */
  listing: { startToCloseTimeout: '1m', retry: SHORT_BACKOFF },
  /**
   * Dumps and restores: they stream for as long as the data takes and heartbeat every 2 s, so a dead
   * worker is noticed within 20 s and the retry resumes from the heartbeat details. On cancellation
   * the workflow waits until the activity has really stopped, so no cleanup or compensation runs
   * under a dump or restore that is still writing.
   */
  streaming: {
    startToCloseTimeout: '6h',
    heartbeatTimeout: '20s',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '2s', maximumInterval: '1m', maximumAttempts: 20 },
  },
  /** Archiving a chat stream: up to 2 h, heartbeating every batch. */
  archiving: {
    startToCloseTimeout: '2h',
    heartbeatTimeout: '15s',
    retry: { initialInterval: '1s', maximumInterval: '1m', maximumAttempts: 20 },
  },
  /** Work over many backups (platform globals, pruning): up to 30 min. */
  backupStore: { startToCloseTimeout: '30m', heartbeatTimeout: '60s', retry: LONG_BACKOFF },
  /** Pruning: up to 30 min, heartbeating every removed backup. */
  pruning: { startToCloseTimeout: '30m', heartbeatTimeout: '2m', retry: LONG_BACKOFF },
  /** Reading the whole deletion log: up to 1 h. */
  deletionLog: { startToCloseTimeout: '1h', heartbeatTimeout: '1m', retry: LONG_BACKOFF },
  /** Crypto-shredding after the retention: retried without limit, up to every 10 min, until the keys are gone. */
  shredding: {
    startToCloseTimeout: '30m',
    heartbeatTimeout: '1m',
    retry: { initialInterval: '5s', backoffCoefficient: 2, maximumInterval: '10m' },
  },
  /** Single Kubernetes API calls: reads, plans, one patch, one create. */
  kubernetesApi: { startToCloseTimeout: '1m', retry: KUBERNETES_BACKOFF },
  /**
   * Waits for rollouts; they heartbeat every poll, so a lost worker is noticed within the heartbeat
   * timeout and the wait resumes elsewhere (the state lives in the cluster).
   */
  kubernetesWait: { startToCloseTimeout: '30m', heartbeatTimeout: '30s', retry: KUBERNETES_BACKOFF },
  /** Waits for Velero backups: up to 12 h, heartbeating every poll. */
  veleroWait: { startToCloseTimeout: '12h', heartbeatTimeout: '1m', retry: KUBERNETES_BACKOFF },
  /** The helm binary: few attempts, since a failed rollback is reported rather than repeated. */
  helm: { startToCloseTimeout: '10m', heartbeatTimeout: '1m', retry: { ...KUBERNETES_BACKOFF, maximumAttempts: 3 } },
} satisfies Record<string, ActivityKind>;

/** The retry policy of `retry`, with the failure types that no retry can fix. */
export function withPermanentFailures(retry: ActivityKind['retry']): RetryPolicy {
  return { ...retry, nonRetryableErrorTypes: [...NON_RETRYABLE_FAILURE_TYPES] };
}

/** Proxies of the activities `A` (default: all of them) for calls of one kind. */
export function activityProxies<A = Activities>(kind: ActivityKind): ActivityInterfaceFor<A> {
  return proxyActivities<A>({ ...kind, retry: withPermanentFailures(kind.retry) });
}

/** Short steps (checks, listings, manifests, fingerprints): retried with backoff, permanent failures at once. */
export const quickActivities = activityProxies(ACTIVITY_KINDS.quick);

/** Dumps and restores; see {@link ACTIVITY_KINDS.streaming}. */
export const streamingActivities = activityProxies(ACTIVITY_KINDS.streaming);

/**
 * Store probes of the preflight: 20 s, 3 quick attempts of every failure, permanent ones included,
 * since a probe's whole point is to say which store does not answer after a short wait.
 */
const PROBE_OPTIONS = {
  startToCloseTimeout: '20s',
  retry: { maximumAttempts: 3, initialInterval: '500ms', backoffCoefficient: 2, maximumInterval: '2s' },
} as const;
export const probeActivities = proxyActivities<Activities>(PROBE_OPTIONS);

/**
 * The same calls as local activities: run by the worker that runs the workflow, recorded as one
 * marker each instead of three events and a workflow task, with the same timeouts and retries.
 * For the steps of every organization's backup that take milliseconds (probes, checks, counts):
 * at 1,000 organizations their scheduling cost more than their work. A backoff up to a minute
 * waits in the worker; a cancelled call is given up at once, as a regular one (TRY_CANCEL).
 */
export const localProbeActivities = proxyLocalActivities<Activities>({
  ...PROBE_OPTIONS,
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});
export const localQuickActivities = proxyLocalActivities<Activities>({
  startToCloseTimeout: ACTIVITY_KINDS.quick.startToCloseTimeout,
  retry: withPermanentFailures(ACTIVITY_KINDS.quick.retry),
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});
export const localGlanceActivities = proxyLocalActivities<Activities>({
  startToCloseTimeout: ACTIVITY_KINDS.glance.startToCloseTimeout,
  retry: withPermanentFailures(ACTIVITY_KINDS.glance.retry),
  cancellationType: ActivityCancellationType.TRY_CANCEL,
});

/**
 * Steps after a deletion's point of no return: what retrying cannot fix fails at once, anything
 * else is retried with backoff for `storeDownAfterMs`, after which the run parks for an operator.
 */
export function untilDoneActivities(storeDownAfterMs: number): ActivityInterfaceFor<Activities> {
  return activityProxies({
    scheduleToCloseTimeout: storeDownAfterMs,
    startToCloseTimeout: storeDownAfterMs,
    heartbeatTimeout: '20s',
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s' },
  });
}

/**
 * Steps after a deletion's point of no return, as runs started under `deletion-retries-failures-in-workflow`
 * make them: ONE attempt per call, allowed `startToCloseMs` (heartbeating, so a dead worker is still
 * noticed in 20 s), and the workflow retries failed attempts for `storeDownAfter` before parking. A
 * Temporal retry policy can bound retries only with a schedule-to-close limit, which also cuts a
 * healthy call that is merely long (the residue count or the purge of a big organization, a lock
 * held by a migration): with it, a slow store parked the run as if it were down.
 */
export function untilDoneAttempts(startToCloseMs: number): ActivityInterfaceFor<Activities> {
  return activityProxies({
    startToCloseTimeout: startToCloseMs,
    heartbeatTimeout: '20s',
    retry: { maximumAttempts: 1 },
  });
}

/** A saga's small steps (marks, holds, the deletion log); see {@link ACTIVITY_KINDS.sagaStep}. */
export const sagaStepActivities = activityProxies(ACTIVITY_KINDS.sagaStep);

/** A look that must not hold the run up; see {@link ACTIVITY_KINDS.glance}. */
export const glanceActivities = activityProxies(ACTIVITY_KINDS.glance);
