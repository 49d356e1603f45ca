import type { WorkflowHandle } from '@temporalio/client';
import { z } from 'zod';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/** The marker Temporal's core SDK records for each local activity, and the part of its data we read. */
const LOCAL_ACTIVITY_MARKER = 'core_local_activity';
const localActivityData = z.object({ activity_type: z.string() });

/** The type of every activity a history scheduled on a task queue, in order (retries not repeated). */
export function regularActivityTypes(history: History): string[] {
  return (history.events ?? []).flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
}

/** The type of every local activity a history recorded, in order: one marker per call, retries included in it. */
export function localActivityTypes(history: History): string[] {
  return (history.events ?? []).flatMap((e) => {
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName !== LOCAL_ACTIVITY_MARKER) return [];
    const data = marker.details?.data?.payloads?.[0]?.data;
    if (!data) throw new Error(`local activity marker (event ${String(e.eventId)}) carries no data`);
    return [localActivityData.parse(JSON.parse(Buffer.from(data).toString('utf8'))).activity_type];
  });
}

/** The scheduled event id of the activity `e` closes (completed, failed, timed out or cancelled). */
function closedActivity(e: NonNullable<History['events']>[number]): string | undefined {
  const closed =
    e.activityTaskCompletedEventAttributes ??
    e.activityTaskFailedEventAttributes ??
    e.activityTaskTimedOutEventAttributes ??
    e.activityTaskCanceledEventAttributes;
  return closed ? String(closed.scheduledEventId) : undefined;
}

/** The activities a history scheduled that never completed, failed, timed out or were cancelled: running on after the run. */
export function openActivities(history: History): string[] {
  const open = new Map<string, string>();
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) open.set(String(e.eventId), scheduled.activityType?.name ?? '?');
    const closed = closedActivity(e);
    if (closed) open.delete(closed);
  }
  return [...open.values()];
}

/**
 * The activities still running when the first `activityType` was scheduled: what a cleanup step ran
 * under. Empty when everything before it had ended.
 */
export function openWhenScheduled(history: History, activityType: string): string[] {
  const open = new Map<string, string>();
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled?.activityType?.name === activityType) return [...open.values()];
    if (scheduled) open.set(String(e.eventId), scheduled.activityType?.name ?? '?');
    const closed = closedActivity(e);
    if (closed) open.delete(closed);
  }
  throw new Error(`the history never scheduled ${activityType}`);
}
