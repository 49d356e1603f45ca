import type { RecoveryClient } from '../client';
import { formatBytes } from '../platform/describe';
import type { CommandContext, OptionValues } from './command';
import { ExitCode } from './exit-codes';

/** `--request-id`, for every command that starts a workflow. */
export const REQUEST_ID_OPTION = {
  name: 'request-id',
  kind: 'value',
  placeholder: '<id>',
  description: 'idempotency key: the same id starts one workflow, not two',
} as const;

/** The options of a command that starts a workflow and follows it to its end. */
export const STARTED_RUN_OPTIONS = [
  REQUEST_ID_OPTION,
  { name: 'no-wait', kind: 'flag', description: 'start and print the workflow id, do not wait for the result' },
  {
    name: 'poll-ms',
    kind: 'value',
    placeholder: '<ms>',
    description: 'how often to ask the run for its progress, in milliseconds (default 1000)',
  },
] as const;

/** How to start and follow a run, from `STARTED_RUN_OPTIONS`. */
export interface StartedRunSettings {
  /** The client's request options: the idempotency key, if given. */
  request: { requestId?: string };
  wait: boolean;
  pollMs: number;
}

export function startedRunSettings(options: OptionValues<typeof STARTED_RUN_OPTIONS>): StartedRunSettings {
  return {
    request: options['request-id'] !== undefined ? { requestId: options['request-id'] } : {},
    wait: !options['no-wait'],
    pollMs: options['poll-ms'] !== undefined ? Number(options['poll-ms']) : 1000,
  };
}

/**
 * Prints the started run's id, or (waiting) follows its progress and prints its result as
 * `describe` says: indented JSON by default.
 */
export async function finishStarted(
  ctx: CommandContext,
  client: RecoveryClient,
  workflowId: string,
  settings: StartedRunSettings,
  describe: (result: unknown) => string = (result) => JSON.stringify(result, null, 2),
): Promise<ExitCode> {
  ctx.progress(`started ${workflowId}`);
  if (!settings.wait) {
    ctx.print(workflowId, { ok: true, workflowId });
    return ExitCode.Ok;
  }
  const result = await follow(ctx, client, workflowId, settings.pollMs);
  ctx.print(describe(result), { ok: true, workflowId, result });
  return ExitCode.Ok;
}

/** Polls the run's progress query and prints what changed until the run ends; returns its result. */
export async function follow(
  ctx: CommandContext,
  client: RecoveryClient,
  workflowId: string,
  pollMs: number,
): Promise<unknown> {
  const result = client.waitForResult(workflowId);
  let finished = false;
  void result.then(
    () => (finished = true),
    () => (finished = true),
  );
  const shown = new Set<string>();
  let lastStep = '';
  const show = (progress: unknown) => {
    if (progress === null || typeof progress !== 'object') return;
    const p = progress as { step?: unknown; artifacts?: unknown; done?: unknown };
    const step = typeof p.step === 'string' ? p.step : '';
    if (step && step !== lastStep) {
      ctx.progress(`[${workflowId}] ${step}`);
      lastStep = step;
    }
    if (Array.isArray(p.artifacts)) {
      for (const a of p.artifacts as Array<{
        store?: unknown;
        object?: unknown;
        bytes?: unknown;
        rows?: unknown;
        done?: unknown;
      }>) {
        const key = `${String(a.store)}:${String(a.object)}`;
        if (a.done === true && !shown.has(key)) {
          shown.add(key);
          const rows = typeof a.rows === 'number' ? `, ${a.rows} rows` : '';
          ctx.progress(`  ✓ ${String(a.store)} ${String(a.object)} (${formatBytes(Number(a.bytes) || 0)}${rows})`);
        }
      }
    }
  };
  while (!finished) {
    try {
      show((await client.getOperationStatus(workflowId)).progress);
    } catch {
      // A status poll that fails (a worker restarting) is no reason to stop waiting for the result.
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, pollMs))]);
  }
  return result;
}
