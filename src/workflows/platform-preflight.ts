import { ApplicationFailure, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import {
  PREFLIGHT_STORES,
  type PreflightInput,
  type PreflightReport,
  type PreflightStore,
  type StoreProbe,
} from '../contracts/preflight';
import { FailureType } from '../errors';
import { OperationAttribute } from '../search-attributes';
import { probeActivities as probes } from './shared/activity-proxies';

// A probe either answers within seconds or the store is down: three quick attempts, then fail.
const PROBE_OF: Record<PreflightStore, () => Promise<StoreProbe>> = {
  postgres: () => probes.probePostgres(),
  clickhouse: () => probes.probeClickHouse(),
  queue: () => probes.probeQueue(),
  redis: () => probes.probeRedis(),
};

/**
 * Probes every store in parallel and returns their versions and latencies. Fails, non-retryable,
 * with one message naming every store that did not answer and where it was looked for.
 */
export async function platformPreflight(input: PreflightInput = {}): Promise<PreflightReport> {
  if (workflowInfo().typedSearchAttributes.get(OperationAttribute) === undefined) {
    upsertSearchAttributes([{ key: OperationAttribute, value: 'preflight' }]);
  }
  const stores = input.stores ?? [...PREFLIGHT_STORES];
  const unknown = stores.filter((store) => !PREFLIGHT_STORES.includes(store));
  if (unknown.length > 0) {
    throw ApplicationFailure.nonRetryable(
      `stores: unknown store ${unknown.map((s) => JSON.stringify(s)).join(', ')}; expected some of ${PREFLIGHT_STORES.join(', ')}`,
      FailureType.InvalidInput,
    );
  }
  const results = await Promise.allSettled(stores.map((store) => PROBE_OF[store]()));
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
