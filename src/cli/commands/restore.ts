import type { RestoreOrganizationInput } from '../../contracts/verification';
import { noArguments, one } from '../arguments';
import { defineCommand } from '../command';
import { confirm } from '../confirmation';
import { ExitCode, UsageError } from '../exit-codes';
import { restorePlanText } from '../plan-table';
import { finishStarted, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';

export const restoreCommand = defineCommand({
  name: 'restore',
  usage: '[<backupId>]',
  summary: 'restore a backup (or --latest with --org) into an empty organization, or over one with --replace',
  description:
    "Restores one backup, or with --org <org> --latest the organization's newest verified backup. --replace overwrites the target organization: asks for confirmation on a terminal, requires --confirm <target org> otherwise.",
  options: [
    {
      name: 'org',
      kind: 'value',
      placeholder: '<org>',
      description: "the backup's organization (found by searching the store when absent)",
    },
    { name: 'latest', kind: 'flag', description: 'restore the newest verified backup of --org instead of a named one' },
    {
      name: 'into',
      kind: 'value',
      placeholder: '<org>',
      description: "the organization to restore as (default: the backup's own); another id makes a clone",
    },
    {
      name: 'replace',
      kind: 'flag',
      description: 'overwrite the target organization (it is backed up first) instead of requiring it empty',
    },
    {
      name: 'confirm',
      kind: 'value',
      placeholder: '<target org>',
      description: 'with --replace: repeat the target organization id',
    },
    {
      name: 'override-deletion',
      kind: 'value',
      placeholder: '<reason>',
      description: 'restore an organization that was deleted; the reason is recorded in the deletion log',
    },
    {
      name: 'dry-run',
      kind: 'flag',
      description: 'print what the restore would create and replace (a table), change nothing',
    },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    if (options.latest) {
      noArguments(positionals);
      if (options.org === undefined) throw new UsageError('--latest needs the organization: --org <org>');
    }
    const backupId = options.latest ? undefined : one(positionals, 'backup id');
    const source = backupId ?? `the newest verified backup of ${options.org ?? '?'}`;
    const run = startedRunSettings(options);
    const mode = options.replace ? 'replace' : 'into-empty';
    const client = await ctx.connect();
    const target = options.into ?? options.org;
    if (mode === 'replace' && !options['dry-run']) {
      if (target === undefined)
        throw new UsageError('--replace needs the organization to overwrite: --into <org> or --org <org>');
      await confirm(
        ctx,
        options.confirm,
        target,
        `restore of ${source} will REPLACE the data of organization ${target}`,
      );
    }
    const request: RestoreOrganizationInput = {
      ...(backupId !== undefined ? { backupId } : { latest: true }),
      mode,
      ...(options.org ? { orgId: options.org } : {}),
      ...(options.into ? { targetOrgId: options.into } : {}),
      ...(options['override-deletion'] !== undefined ? { override: { reason: options['override-deletion'] } } : {}),
    };
    if (options['dry-run']) {
      const plan = await client.planRestore(request);
      ctx.print(restorePlanText(plan), { ok: true, plan });
      return ExitCode.Ok;
    }
    const started = await client.startRestore(request, run.request);
    return finishStarted(
      ctx,
      client,
      started.workflowId,
      run,
      (result) => `restore finished: ${JSON.stringify(result)}`,
    );
  },
});
