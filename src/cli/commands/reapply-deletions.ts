import { reapplyDeletions } from '../../client/deletion';
import { BY_OPTION, noArguments, operatorName } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode } from '../exit-codes';

export const reapplyDeletionsCommand = defineCommand({
  name: 'reapply-deletions',
  usage: '',
  summary: 'delete again what a whole-platform restore brought back',
  description:
    'After a whole-platform restore by hand: deletes again every organization of the deletion log that the restore brought back.',
  options: [
    { name: 'dry-run', kind: 'flag', description: 'list the organizations that came back, delete nothing' },
    BY_OPTION,
  ],
  async run(ctx, { positionals, options }) {
    noArguments(positionals);
    const client = await ctx.connect();
    const result = await reapplyDeletions(
      client.temporal,
      { requestedBy: operatorName(ctx, options.by), dryRun: options['dry-run'] ?? false },
      { taskQueue: client.taskQueue },
    );
    ctx.print(
      `${result.reapplied.length} organization(s) of the deletion log were back${options['dry-run'] ? ' (dry run: nothing deleted)' : ' and were deleted again'}: ${result.reapplied.map((r) => r.orgId).join(', ') || '-'}`,
      result,
    );
    return ExitCode.Ok;
  },
});
