import { Context } from '@temporalio/activity';

/**
 * Heartbeats `details()` every `intervalMs` while a long activity streams, so the Temporal UI shows
 * its progress, a dead worker is noticed within the heartbeat timeout, and cancellation arrives.
 */
export function startHeartbeats(details: () => unknown, intervalMs = 2_000): { stop(): void } {
  const ctx = Context.current();
  ctx.heartbeat(details());
  const timer = setInterval(() => ctx.heartbeat(details()), intervalMs);
  return { stop: () => clearInterval(timer) };
}
