import { parseDuration } from '../../client/validation';
import { BY_OPTION, one, operatorName } from '../arguments';
import { defineCommand } from '../command';
import { confirm } from '../confirmation';
import { ExitCode } from '../exit-codes';
import { deletionPlanText } from '../plan-table';
import { REQUEST_ID_OPTION, startedRunSettings } from '../started-run';

export const deleteCommand = defineCommand({
  name: 'delete',
  usage: '<org>',
  summary: 'delete an organization from every store after a cancellable grace period',
  description:
    'Starts the deletion (backup + verify first, then a cancellable grace period). Without --confirm it asks on a terminal and refuses otherwise.',
  options: [
    { name: 'confirm', kind: 'value', placeholder: '<org>', description: 'repeat the organization id' },
    {
      name: 'grace',
      kind: 'value',
      placeholder: '7d',
      description: 'the grace period during which cancel-delete stops the deletion (default 7d)',
    },
    {
      name: 'reason',
      kind: 'value',
      placeholder: '<text>',
      description: 'why, recorded in the deletion certificate (default: "requested from the CLI")',
    },
    BY_OPTION,
    { name: 'skip-backup', kind: 'flag', description: 'delete without taking and verifying a backup first' },
    {
      name: 'dry-run',
      kind: 'flag',
      description: 'print what the deletion would remove, store by store (a table); change nothing, ask nothing',
    },
    REQUEST_ID_OPTION,
  ],
  async run(ctx, { positionals, options }) {
    const orgId = one(positionals, 'organization id');
    const gracePeriod = options.grace ?? '7d';
    parseDuration(gracePeriod, '--grace');
    const request = {
      orgId,
      confirmOrgId: orgId,
      requestedBy: operatorName(ctx, options.by),
      reason: options.reason ?? 'requested from the CLI',
      gracePeriod,
      skipBackup: options['skip-backup'] ?? false,
    };
    if (options['dry-run']) {
      const plan = await (await ctx.connect()).planDeletion(request);
      ctx.print(deletionPlanText(plan), { ok: true, plan });
      return ExitCode.Ok;
    }
    await confirm(
      ctx,
      options.confirm,
      orgId,
      `this DELETES organization ${orgId} from every store after a ${gracePeriod} grace period`,
    );
    const client = await ctx.connect();
    const started = await client.startDeletion(request, startedRunSettings(options).request);
    ctx.print(
      `deletion of ${orgId} started: ${started.workflowId}; cancel within ${gracePeriod} with: eloquent-recovery cancel-delete ${orgId}`,
      {
        ok: true,
        workflowId: started.workflowId,
        runId: started.runId,
      },
    );
    return ExitCode.Ok;
  },
});
