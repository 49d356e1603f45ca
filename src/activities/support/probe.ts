import { ApplicationFailure } from '@temporalio/common';
import type { StoreProbe } from '../../contracts/preflight';
import { FailureType, messageOf, type StoreName } from '../../errors';

/**
 * Runs one preflight probe with a deadline and turns any failure into a message that names the
 * store and its address. The failure stays retryable: the workflow's retry policy bounds attempts.
 */
export async function probeStore(
  store: StoreName,
  address: string,
  timeoutMs: number,
  probe: () => Promise<{ version: string; details?: StoreProbe['details'] }>,
): Promise<StoreProbe> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const answer = await Promise.race([probe(), deadline]);
    return {
      store,
      address,
      version: answer.version,
      latencyMs: Math.round((performance.now() - started) * 100) / 100,
      details: answer.details ?? {},
    };
  } catch (err) {
    throw ApplicationFailure.create({
      type: FailureType.StoreUnavailable,
      message: `${store} at ${address} is unreachable: ${messageOf(err)}`,
      nonRetryable: false,
    });
  } finally {
    clearTimeout(timer);
  }
}
