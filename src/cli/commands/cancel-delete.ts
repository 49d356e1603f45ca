import { BY_OPTION, one, operatorName } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode } from '../exit-codes';

export const cancelDeleteCommand = defineCommand({
  name: 'cancel-delete',
  usage: '<org>',
  summary: "cancel an organization's deletion during its grace period",
  options: [
    {
      name: 'reason',
      kind: 'value',
      placeholder: '<text>',
      description: 'why, recorded with the cancellation (default: "cancelled from the CLI")',
    },
    BY_OPTION,
  ],
  async run(ctx, { positionals, options }) {
    const orgId = one(positionals, 'organization id');
    const client = await ctx.connect();
    await client.cancelDeletion(orgId, {
      by: operatorName(ctx, options.by),
      reason: options.reason ?? 'cancelled from the CLI',
    });
    ctx.print(`cancellation sent to delete-org-${orgId}`, { ok: true, workflowId: `delete-org-${orgId}` });
    return ExitCode.Ok;
  },
});
