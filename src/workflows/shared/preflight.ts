// The probes of a preflight, shared by the platformPreflight workflow and the workflows that probe
// their stores inline. Workflow-safe.
import { ApplicationFailure } from '@temporalio/workflow';
import type { PreflightReport, PreflightStore, StoreProbe } from '../../contracts/preflight';
import { FailureType } from '../../errors';
import { probeActivities } from './activity-proxies';

/** The probe activities, through regular or local proxies. */
export type ProbeProxies = Pick<
  typeof probeActivities,
  'probePostgres' | 'probeClickHouse' | 'probeQueue' | 'probeRedis'
>;

// A probe either answers within seconds or the store is down: three quick attempts, then fail.
const probeOf = (probes: ProbeProxies): Record<PreflightStore, () => Promise<StoreProbe>> => ({
  postgres: () => probes.probePostgres(),
  clickhouse: () => probes.probeClickHouse(),
  queue: () => probes.probeQueue(),
  redis: () => probes.probeRedis(),
});

/**
 * Probes `stores` in parallel and returns their versions and latencies. Fails, non-retryable, with
 * one message naming every store that did not answer and where it was looked for. `probes`: the
 * proxies to call them through (regular activities unless the caller runs them locally).
 */
export async function probeStores(
  stores: readonly PreflightStore[],
  probes: ProbeProxies = probeActivities,
): Promise<PreflightReport> {
  const probe = probeOf(probes);
  const results = await Promise.allSettled(stores.map((store) => probe[store]()));
  const failures = results.flatMap((result) => (result.status === 'rejected' ? [causeMessage(result.reason)] : []));
  if (failures.length > 0) {
    throw ApplicationFailure.nonRetryable(`preflight failed: ${failures.join('; ')}`, FailureType.StoreUnavailable);
  }
  return {
    checkedAt: new Date().toISOString(),
    stores: results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : [])),
  };
}

/** An ActivityFailure's message is generic; the activity's own message is in its cause. */
function causeMessage(reason: unknown): string {
  if (reason instanceof Error) {
    const cause = reason.cause;
    return cause instanceof Error ? cause.message : reason.message;
  }
  return String(reason);
}
