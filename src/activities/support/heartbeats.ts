import { Context } from '@temporalio/activity';
import type { ManifestArtifact, StoreProgressReport } from '../../contracts/backup';

/**
 * Heartbeats `details()` every `intervalMs` while a long activity streams, so the Temporal UI shows
 * its progress, a dead worker is noticed within the heartbeat timeout, and cancellation arrives.
 */
export function startHeartbeats(details: () => unknown, intervalMs = 2_000): { stop(): void } {
  const ctx = Context.current();
  ctx.heartbeat(details());
  // Three beats per heartbeat timeout at least, however short the caller set it.
  const timeoutMs = ctx.info.heartbeatTimeoutMs;
  const everyMs = timeoutMs ? Math.max(100, Math.min(intervalMs, Math.floor(timeoutMs / 3))) : intervalMs;
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  return { stop: () => clearInterval(timer) };
}

/**
 * Runs `work` heartbeating `details()` every `intervalMs` until it settles: for an activity whose one
 * query or one read (a fingerprint, a checksum of a large artifact) may outlast its heartbeat timeout.
 */
export async function withHeartbeats<T>(
  details: () => unknown,
  work: () => Promise<T>,
  intervalMs = 2_000,
): Promise<T> {
  const heartbeats = startHeartbeats(details, intervalMs);
  try {
    return await work();
  } finally {
    heartbeats.stop();
  }
}

/**
 * Sends `report()` to `send` every `intervalMs` (and never two at once) while an activity streams,
 * so the workflow can answer its progress query with bytes of artifacts still being written. Best
 * effort: a report that fails is dropped, the next one carries the newer state anyway.
 */
export function startProgressReports<T>(
  report: () => T,
  send: ((value: T) => Promise<void>) | undefined,
  intervalMs = 3_000,
): { stop(): void } {
  if (!send) return { stop: () => undefined };
  let sending = false;
  const timer = setInterval(() => {
    if (sending) return;
    sending = true;
    send(report())
      .catch(() => undefined)
      .finally(() => (sending = false));
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}

/** Finished artifacts plus the one being written, as the workflow's progress query shows them. */
export function progressReport(
  store: 'postgres' | 'clickhouse',
  finished: ManifestArtifact[],
  current: { object: string; bytes: number },
): StoreProgressReport {
  const artifacts = finished.map((a) => ({ store, object: a.object, bytes: a.rawBytes, rows: a.rows, done: true }));
  if (current.object && !finished.some((a) => a.object === current.object))
    artifacts.push({ store, object: current.object, bytes: current.bytes, rows: null, done: false });
  return { store, artifacts };
}
