import { BY_OPTION, one, operatorName } from '../arguments';
import { defineCommand, type CommandContext } from '../command';
import type { ExitCode } from '../exit-codes';
import { printDeletionAnswer } from './deletion-request';

/**
 * Sends the operator's decision to the organization's parked deletion; shared with `abandon-delete`.
 * A run that is not parked refuses it (exit 4, with its reason).
 */
export async function decideParked(
  ctx: CommandContext,
  orgId: string,
  decision: 'retryNow' | 'abandon',
  options: { by?: string; reason?: string },
): Promise<ExitCode> {
  const client = await ctx.connect();
  const answer = await client.decideParkedDeletion(orgId, decision, {
    by: operatorName(ctx, options.by),
    reason: options.reason ?? 'retry requested from the CLI',
  });
  return printDeletionAnswer(ctx, answer);
}

export const retryDeleteCommand = defineCommand({
  name: 'retry-delete',
  usage: '<org>',
  summary: 'try a deletion parked on a store that stays down again now',
  description: 'A deletion parked because a store stayed down: try the parked step again now.',
  options: [
    {
      name: 'reason',
      kind: 'value',
      placeholder: '<text>',
      description: 'why, recorded with the decision (default: "retry requested from the CLI")',
    },
    BY_OPTION,
  ],
  async run(ctx, { positionals, options }) {
    return decideParked(ctx, one(positionals, 'organization id'), 'retryNow', options);
  },
});
