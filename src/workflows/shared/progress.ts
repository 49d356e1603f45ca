// The current step of a run, in one place: what its progress query answers and what the Temporal UI
// shows as the run's current details. Workflow-safe.
import { setCurrentDetails } from '@temporalio/workflow';

/** Moves a run to `step`; `details` (Markdown) says more in the UI, e.g. what the step waits for. */
export type MoveTo<S extends string> = (step: S, details?: string) => void;

/**
 * Returns the function that moves `progress` (the object a progress query answers) from step to
 * step and shows each step in the UI as `**<step>** — <title>[: <details>]`.
 */
export function trackProgress<S extends string>(progress: { step: S }, title: string): MoveTo<S> {
  return (step, details) => {
    progress.step = step;
    setCurrentDetails(`**${step}** — ${title}${details ? `: ${details}` : ''}`);
  };
}
