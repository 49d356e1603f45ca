import { one } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode } from '../exit-codes';

export const statusCommand = defineCommand({
  name: 'status',
  usage: '<workflowId|org>',
  summary: "status and progress of a run, or an organization's recent runs",
  options: [],
  async run(ctx, { positionals }) {
    const target = one(positionals, 'workflow id or organization id');
    const client = await ctx.connect();
    if (/^[a-z0-9_]+$/.test(target)) {
      const runs = await client.listOperations(target);
      ctx.print(
        runs.length
          ? runs
              .map((r) => `${r.startTime}  ${r.status.padEnd(10)} ${(r.operation ?? '').padEnd(12)} ${r.workflowId}`)
              .join('\n')
          : `no runs for ${target}`,
        { ok: true, orgId: target, runs },
      );
      return ExitCode.Ok;
    }
    const status = await client.getOperationStatus(target);
    const grace =
      status.gracePeriodLeftMs !== undefined
        ? `\ngrace period: ${Math.ceil(status.gracePeriodLeftMs / 1000)} s left; cancel with: eloquent-recovery cancel-delete ${status.orgId ?? '<org>'}`
        : '';
    ctx.print(
      `${status.workflowId} (${status.type}): ${status.status}${status.progress !== undefined ? `\nprogress: ${JSON.stringify(status.progress)}` : ''}${grace}`,
      { ok: true, ...status },
    );
    return ExitCode.Ok;
  },
});
