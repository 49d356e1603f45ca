import type { WorkflowHandle } from '@temporalio/client';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

/** One event of a run's history as `logs` prints it. */
export interface HistoryLine {
  eventId: number;
  /** ISO-8601. */
  time: string;
  /** `started`, `step`, `done`, `failed`, `retry`, `timer`, `signal`, `update`, `child`, `end`. */
  kind: string;
  text: string;
}

/** The message of a failure and of each cause beneath it: the reason sits a few causes deep. */
function failureText(failure: { message?: string | null; cause?: unknown } | null | undefined): string {
  const messages: string[] = [];
  let current: { message?: string | null; cause?: unknown } | null | undefined = failure;
  for (let depth = 0; depth < 8 && current; depth++) {
    if (current.message && !messages.includes(current.message)) messages.push(current.message);
    current = current.cause as typeof current;
  }
  return messages.join(': ') || 'no message';
}

function timeOf(event: HistoryEvent): string {
  const t = event.eventTime;
  if (!t) return '';
  return new Date(Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6)).toISOString();
}

/**
 * The events of a history that tell an operator what happened, as lines: activities scheduled and
 * how they ended (with the failure's message and attempt), timers, signals, updates, child runs and
 * how the run ended. Workflow-task bookkeeping is left out.
 */
export function historyLines(history: History): HistoryLine[] {
  const events = history.events ?? [];
  const activityName = new Map<string, string>();
  const childName = new Map<string, string>();
  const lines: HistoryLine[] = [];
  for (const e of events) {
    const id = Number(e.eventId ?? 0);
    const push = (kind: string, text: string) => lines.push({ eventId: id, time: timeOf(e), kind, text });
    if (e.workflowExecutionStartedEventAttributes) {
      const a = e.workflowExecutionStartedEventAttributes;
      push('started', `${a.workflowType?.name ?? 'workflow'} started on task queue ${a.taskQueue?.name ?? '?'}`);
    } else if (e.activityTaskScheduledEventAttributes) {
      const name = e.activityTaskScheduledEventAttributes.activityType?.name ?? 'activity';
      activityName.set(String(id), name);
      push('step', `${name} scheduled`);
    } else if (e.activityTaskStartedEventAttributes) {
      const a = e.activityTaskStartedEventAttributes;
      if ((a.attempt ?? 1) > 1) {
        const name = activityName.get(String(a.scheduledEventId)) ?? 'activity';
        push('retry', `${name} attempt ${a.attempt}, after: ${failureText(a.lastFailure)}`);
      }
    } else if (e.activityTaskCompletedEventAttributes) {
      push(
        'done',
        `${activityName.get(String(e.activityTaskCompletedEventAttributes.scheduledEventId)) ?? 'activity'} completed`,
      );
    } else if (e.activityTaskFailedEventAttributes) {
      const a = e.activityTaskFailedEventAttributes;
      push('failed', `${activityName.get(String(a.scheduledEventId)) ?? 'activity'} FAILED: ${failureText(a.failure)}`);
    } else if (e.activityTaskTimedOutEventAttributes) {
      const a = e.activityTaskTimedOutEventAttributes;
      push(
        'failed',
        `${activityName.get(String(a.scheduledEventId)) ?? 'activity'} TIMED OUT: ${failureText(a.failure)}`,
      );
    } else if (e.activityTaskCanceledEventAttributes) {
      push(
        'failed',
        `${activityName.get(String(e.activityTaskCanceledEventAttributes.scheduledEventId)) ?? 'activity'} cancelled`,
      );
    } else if (e.timerStartedEventAttributes) {
      const s = e.timerStartedEventAttributes.startToFireTimeout?.seconds;
      push(
        'timer',
        `waiting ${s !== undefined && s !== null ? `${Number(s)} s` : ''} (timer ${e.timerStartedEventAttributes.timerId ?? ''})`,
      );
    } else if (e.timerFiredEventAttributes) {
      push('timer', `timer ${e.timerFiredEventAttributes.timerId ?? ''} fired`);
    } else if (e.workflowExecutionSignaledEventAttributes) {
      const a = e.workflowExecutionSignaledEventAttributes;
      push('signal', `signal ${a.signalName ?? '?'}${a.identity ? ` from ${a.identity}` : ''}`);
    } else if (e.workflowExecutionUpdateAcceptedEventAttributes) {
      const name = e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest?.input?.name ?? '?';
      push('update', `update ${name} accepted`);
    } else if (e.startChildWorkflowExecutionInitiatedEventAttributes) {
      const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
      childName.set(String(id), `${a.workflowType?.name ?? 'child'} ${a.workflowId ?? ''}`);
      push('child', `child ${a.workflowType?.name ?? ''} ${a.workflowId ?? ''} started`);
    } else if (e.childWorkflowExecutionCompletedEventAttributes) {
      push(
        'child',
        `child ${childName.get(String(e.childWorkflowExecutionCompletedEventAttributes.initiatedEventId)) ?? ''} completed`,
      );
    } else if (e.childWorkflowExecutionFailedEventAttributes) {
      const a = e.childWorkflowExecutionFailedEventAttributes;
      push('failed', `child ${childName.get(String(a.initiatedEventId)) ?? ''} FAILED: ${failureText(a.failure)}`);
    } else if (e.workflowExecutionCompletedEventAttributes) {
      push('end', 'completed');
    } else if (e.workflowExecutionFailedEventAttributes) {
      push('end', `FAILED: ${failureText(e.workflowExecutionFailedEventAttributes.failure)}`);
    } else if (e.workflowExecutionCanceledEventAttributes) {
      push('end', 'cancelled');
    } else if (e.workflowExecutionTerminatedEventAttributes) {
      push('end', `terminated: ${e.workflowExecutionTerminatedEventAttributes.reason ?? ''}`);
    } else if (e.workflowExecutionTimedOutEventAttributes) {
      push('end', 'timed out');
    } else if (e.workflowExecutionContinuedAsNewEventAttributes) {
      push('end', `continued as new (${e.workflowExecutionContinuedAsNewEventAttributes.newExecutionRunId ?? ''})`);
    }
  }
  return lines;
}
