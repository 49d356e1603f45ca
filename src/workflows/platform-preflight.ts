import { ApplicationFailure, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { PREFLIGHT_STORES, type PreflightInput, type PreflightReport } from '../contracts/preflight';
import { FailureType } from '../errors';
import { OperationAttribute } from '../search-attributes';
import { probeStores } from './shared/preflight';

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
  return probeStores(stores);
}
