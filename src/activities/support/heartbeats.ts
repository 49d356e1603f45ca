import { Context } from '@temporalio/activity';
import type { ArtifactProgress, ManifestArtifact, StoreProgressReport } from '../../contracts/backup';

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
 * Sends what changed in `report()` to `send`, checked every `intervalMs` (never two at once) while
 * an activity streams, so the workflow can answer its progress query with bytes of artifacts still
 * being written. Each report is a signal, and so an event in the workflow's history: only changes
 * are sent (see {@link progressDelta}), never the whole list again. Best effort: a report that
 * fails is dropped and its changes go with the next one.
 */
export function startProgressReports(
  report: () => StoreProgressReport,
  send: ((value: StoreProgressReport) => Promise<void>) | undefined,
  intervalMs = 3_000,
): { stop(): void } {
  if (!send) return { stop: () => undefined };
  const sent = new Map<string, ArtifactProgress>();
  let sending = false;
  const timer = setInterval(() => {
    if (sending) return;
    const delta = progressDelta(report(), sent);
    if (!delta) return;
    sending = true;
    send(delta)
      .then(() => {
        for (const a of delta.artifacts) sent.set(a.object, a);
      })
      .catch(() => undefined)
      .finally(() => (sending = false));
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}

/**
 * An artifact being written is reported again only once it has doubled since it was last
 * reported: a progress query is then within a factor of two of the truth (heartbeats carry the
 * exact bytes, shown in the UI's pending activities), and an artifact makes a handful of signals
 * however long it streams (1 MiB to 1 TiB: 20) instead of one every interval.
 */
export const PROGRESS_GROWTH_FACTOR = 2;

/**
 * The artifacts of `report` that changed since `sent` (by object): finished since, new, or grown
 * by {@link PROGRESS_GROWTH_FACTOR}; `undefined` when none did. The workflow merges reports by
 * store and object, so a delta is enough.
 */
export function progressDelta(
  report: StoreProgressReport,
  sent: ReadonlyMap<string, ArtifactProgress>,
): StoreProgressReport | undefined {
  const artifacts = report.artifacts.filter((a) => {
    const before = sent.get(a.object);
    if (!before) return true;
    if (a.done) return !before.done;
    return a.bytes >= Math.max(1, before.bytes) * PROGRESS_GROWTH_FACTOR;
  });
  return artifacts.length > 0 ? { store: report.store, artifacts } : undefined;
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
