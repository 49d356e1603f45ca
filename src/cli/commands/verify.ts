import { one } from '../arguments';
import { defineCommand } from '../command';
import { finishStarted, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';

export const verifyCommand = defineCommand({
  name: 'verify',
  usage: '[<backupId>]',
  summary: 'verify a backup (or --latest with --org)',
  description: "Verifies one backup, or with --org <org> --latest the organization's newest backup.",
  options: [
    {
      name: 'org',
      kind: 'value',
      placeholder: '<org>',
      description: "the backup's organization (found by searching the store when absent)",
    },
    { name: 'latest', kind: 'flag', description: 'verify the newest backup of --org instead of a named one' },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    const run = startedRunSettings(options);
    const client = await ctx.connect();
    const input = options.latest
      ? { orgId: options.org ?? '', latest: true as const }
      : { backupId: one(positionals, 'backup id'), ...(options.org ? { orgId: options.org } : {}) };
    const started = await client.startVerification(input, run.request);
    return finishStarted(
      ctx,
      client,
      started.workflowId,
      run,
      (result) => `verification passed: ${JSON.stringify(result)}`,
    );
  },
});
