// A test-only workflow: runs one activity of the real worker with the timeouts a test chooses, and
// exactly one attempt, so a test sees what a too-short limit does instead of a retry hiding it.
import { proxyActivities } from '@temporalio/workflow';

export interface OneActivityInput {
  activity: string;
  args: unknown[];
  heartbeatTimeoutMs: number;
  startToCloseTimeoutMs: number;
}

export async function runOneActivity(input: OneActivityInput): Promise<unknown> {
  const activities = proxyActivities<Record<string, (...args: unknown[]) => Promise<unknown>>>({
    heartbeatTimeout: input.heartbeatTimeoutMs,
    startToCloseTimeout: input.startToCloseTimeoutMs,
    retry: { maximumAttempts: 1 },
  });
  const activity = activities[input.activity];
  if (!activity) throw new Error(`no activity ${input.activity}`);
  return activity(...input.args);
}
