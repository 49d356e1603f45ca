import { one } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode } from '../exit-codes';

export const logsCommand = defineCommand({
  name: 'logs',
  usage: '<workflowId>',
  summary: "a run's history as readable progress and failure lines",
  description:
    "Prints the run's history, oldest first: each activity scheduled and how it ended (a failure with its message and attempt), timers, signals, updates, children and how the run ended. The latest run of the id.",
  options: [{ name: 'failures', kind: 'flag', description: 'only failures, retries and how the run ended' }],
  async run(ctx, { positionals, options }) {
    const workflowId = one(positionals, 'workflow id');
    const client = await ctx.connect();
    const all = await client.workflowLog(workflowId);
    const lines = options.failures ? all.filter((l) => ['failed', 'retry', 'end'].includes(l.kind)) : all;
    ctx.print(
      lines.map((l) => `${l.time}  ${String(l.eventId).padStart(4)}  ${l.kind.padEnd(7)} ${l.text}`).join('\n') ||
        `no events of ${workflowId}`,
      { ok: true, workflowId, events: lines },
    );
    return ExitCode.Ok;
  },
});
