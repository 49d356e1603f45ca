import { BY_OPTION, one, operatorName } from '../arguments';
import { defineCommand } from '../command';
import { printDeletionAnswer } from './deletion-request';

export const cancelDeleteCommand = defineCommand({
  name: 'cancel-delete',
  usage: '<org>',
  summary: "cancel an organization's deletion during its grace period",
  description:
    "Cancels the organization's deletion before its point of no return; its changes are undone. Exits 4 with the deletion's reason when it cannot be cancelled any more.",
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
    const answer = await client.cancelDeletion(orgId, {
      by: operatorName(ctx, options.by),
      reason: options.reason ?? 'cancelled from the CLI',
    });
    return printDeletionAnswer(ctx, answer);
  },
});
