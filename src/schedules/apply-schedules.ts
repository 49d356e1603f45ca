import {
  ScheduleAlreadyRunning,
  ScheduleNotFoundError,
  type Client,
  type ScheduleDescription,
  type ScheduleOptions,
} from '@temporalio/client';
import { scheduleSpecHash, type ScheduleEntry, type ScheduleFile } from './schedule-file';
import { parseDurationMs } from '../contracts/duration';

/** Prefix of the ids of the schedules this project manages; also the default set name. */
export const DEFAULT_SCHEDULE_PREFIX = 'eloquent-';

/** Memo key on the schedule naming the set (prefix) that owns it. */
const SET_MEMO_KEY = 'eloquentScheduleSet';
/** Memo key on the schedule's action holding {@link scheduleSpecHash}. */
const HASH_MEMO_KEY = 'eloquentScheduleHash';

export interface ScheduleTarget {
  client: Client;
  /** Task queue the scheduled workflows run on. */
  taskQueue: string;
  /** Id prefix and owner mark. @default "eloquent-" */
  prefix?: string;
  /** Report what would be created, updated and removed; change nothing. @default false */
  dryRun?: boolean;
}

export interface ApplyReport {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
  /** True when Temporal already matched the file. */
  noChange: boolean;
}

/** Memo key on the schedule's action holding the spec as the file wrote it, for `schedules list`. */
const SPEC_MEMO_KEY = 'eloquentScheduleSpec';

/** Milliseconds of `15m`, `1h`, `7d` (the file's schema already checked the form). */
function everyMs(every: string): number {
  return parseDurationMs(every, 'every');
}

function specText(entry: ScheduleEntry): string {
  return entry.cron?.trim().split(/\s+/).join(' ') ?? `every ${entry.every ?? ''}`;
}

function optionsFor(entry: ScheduleEntry, target: ScheduleTarget, prefix: string): ScheduleOptions {
  const scheduleId = `${prefix}${entry.id}`;
  return {
    scheduleId,
    spec:
      entry.cron !== undefined
        ? { cronExpressions: [specText(entry)] }
        : { intervals: [{ every: everyMs(entry.every ?? '1h') }] },
    action: {
      type: 'startWorkflow',
      workflowType: entry.workflowType,
      args: entry.args,
      taskQueue: target.taskQueue,
      // Temporal appends the scheduled time, so every run has its own id under this prefix.
      workflowId: scheduleId,
      memo: {
        [HASH_MEMO_KEY]: scheduleSpecHash(entry, target.taskQueue),
        [SPEC_MEMO_KEY]: entry.cron !== undefined ? specText(entry) : `every ${entry.every}`,
        schedule: scheduleId,
      },
      staticSummary: entry.description,
    },
    // Never two runs of one schedule at once: a run still going when the next is due makes it skip.
    policies: { overlap: 'SKIP', catchupWindow: '1h', pauseOnFailure: false },
    state: { paused: entry.paused, note: entry.description },
    memo: { [SET_MEMO_KEY]: prefix },
  };
}

function hashOf(description: ScheduleDescription): string | undefined {
  const action = description.action;
  if (action.type !== 'startWorkflow') return undefined;
  const value = action.memo?.[HASH_MEMO_KEY];
  return typeof value === 'string' ? value : undefined;
}

async function describeOrUndefined(client: Client, scheduleId: string): Promise<ScheduleDescription | undefined> {
  try {
    return await client.schedule.getHandle(scheduleId).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

/** Ids of every schedule owned by the set `prefix` (by its memo, so another set's schedules are never touched). */
export async function listManagedSchedules(client: Client, prefix = DEFAULT_SCHEDULE_PREFIX): Promise<string[]> {
  const ids: string[] = [];
  for await (const summary of client.schedule.list()) {
    if (summary.memo?.[SET_MEMO_KEY] === prefix && summary.scheduleId.startsWith(prefix)) ids.push(summary.scheduleId);
  }
  return ids.sort();
}

/**
 * Makes Temporal's schedules match the file: creates missing ones, updates those whose normalized
 * entry changed (compared by hash, read with `describe`, which is strongly consistent), and deletes
 * schedules of this set that the file no longer lists. Applying the same file twice changes
 * nothing and reports `noChange`. Paused state is left as an operator set it.
 */
export async function applySchedules(file: ScheduleFile, target: ScheduleTarget): Promise<ApplyReport> {
  const prefix = target.prefix ?? DEFAULT_SCHEDULE_PREFIX;
  const report: ApplyReport = { created: [], updated: [], unchanged: [], removed: [], noChange: true };
  const wanted = new Set<string>();
  for (const entry of file.schedules) {
    const options = optionsFor(entry, target, prefix);
    wanted.add(options.scheduleId);
    const existing = await describeOrUndefined(target.client, options.scheduleId);
    if (existing === undefined && target.dryRun) {
      report.created.push(options.scheduleId);
      continue;
    }
    if (existing === undefined) {
      try {
        await target.client.schedule.create(options);
        report.created.push(options.scheduleId);
        continue;
      } catch (err) {
        if (!(err instanceof ScheduleAlreadyRunning)) throw err;
      }
    }
    const current = existing ?? (await target.client.schedule.getHandle(options.scheduleId).describe());
    if (hashOf(current) === scheduleSpecHash(entry, target.taskQueue)) {
      report.unchanged.push(options.scheduleId);
      continue;
    }
    report.updated.push(options.scheduleId);
    if (target.dryRun) continue;
    await target.client.schedule.getHandle(options.scheduleId).update((previous) => ({
      ...previous,
      spec: options.spec,
      action: options.action,
      policies: options.policies,
      state: { paused: previous.state.paused, note: options.state?.note },
    }));
  }
  // Listing is eventually consistent: a schedule created a moment ago may be missing, never extra.
  for (const id of await listManagedSchedules(target.client, prefix)) {
    if (wanted.has(id)) continue;
    if (target.dryRun) {
      report.removed.push(id);
      continue;
    }
    try {
      await target.client.schedule.getHandle(id).delete();
      report.removed.push(id);
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err;
    }
  }
  report.noChange = report.created.length + report.updated.length + report.removed.length === 0;
  return report;
}

/** One schedule as `schedules list` shows it. */
export interface ScheduleListing {
  scheduleId: string;
  workflowType: string;
  spec: string;
  paused: boolean;
  note?: string;
  nextRuns: string[];
  recentRuns: Array<{ workflowId: string; startedAt: string }>;
}

export async function describeManagedSchedules(
  client: Client,
  prefix = DEFAULT_SCHEDULE_PREFIX,
): Promise<ScheduleListing[]> {
  const listings: ScheduleListing[] = [];
  for (const id of await listManagedSchedules(client, prefix)) {
    const d = await describeOrUndefined(client, id);
    if (!d) continue;
    listings.push({
      scheduleId: id,
      workflowType: d.action.type === 'startWorkflow' ? d.action.workflowType : d.action.type,
      spec:
        d.action.type === 'startWorkflow' && typeof d.action.memo?.[SPEC_MEMO_KEY] === 'string'
          ? String(d.action.memo[SPEC_MEMO_KEY])
          : 'unknown',
      paused: d.state.paused,
      ...(d.state.note ? { note: d.state.note } : {}),
      nextRuns: d.info.nextActionTimes.slice(0, 3).map((t) => t.toISOString()),
      recentRuns: d.info.recentActions
        .slice(-3)
        .map((a) => ({ workflowId: a.action.workflow.workflowId, startedAt: a.takenAt.toISOString() })),
    });
  }
  return listings;
}
