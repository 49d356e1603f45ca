import type { PruneBackupsResult } from '../../workflows/prune-backups';
import { noArguments } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode, UsageError } from '../exit-codes';
import { table } from '../plan-table';

/** `--keep-last 7` as a whole number; undefined (the worker's policy) when absent. */
function keep(value: string | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`${option} expects a whole number >= 0, got ${JSON.stringify(value)}`);
  return Number(value);
}

export const pruneCommand = defineCommand({
  name: 'prune',
  usage: '',
  summary: 'apply the retention policy to backups (--dry-run: list what would be removed)',
  description:
    "Runs pruneBackups on the worker's backup store: keeps the last, daily and weekly backups of each organization, never the newest complete one nor one held by a deletion. With --dry-run nothing is removed.",
  options: [
    { name: 'org', kind: 'value', placeholder: '<org>', description: 'only this organization (default: every one)' },
    { name: 'keep-last', kind: 'value', placeholder: 'N', description: 'keep the newest N backups (default 7)' },
    {
      name: 'keep-daily',
      kind: 'value',
      placeholder: 'N',
      description: 'keep one backup a day for N days (default 7)',
    },
    {
      name: 'keep-weekly',
      kind: 'value',
      placeholder: 'N',
      description: 'keep one backup a week for N weeks (default 4)',
    },
    { name: 'dry-run', kind: 'flag', description: 'list what would be removed, remove nothing' },
  ],
  async run(ctx, { positionals, options }) {
    noArguments(positionals);
    const policy = {
      keepLast: keep(options['keep-last'], '--keep-last'),
      keepDaily: keep(options['keep-daily'], '--keep-daily'),
      keepWeekly: keep(options['keep-weekly'], '--keep-weekly'),
    };
    const client = await ctx.connect();
    const result: PruneBackupsResult = await client.pruneBackups({
      ...(options.org !== undefined ? { orgId: options.org } : {}),
      ...Object.fromEntries(Object.entries(policy).filter(([, v]) => v !== undefined)),
      dryRun: options['dry-run'] ?? false,
    });
    const removed = result.organizations.reduce((n, o) => n + o.removed.length, 0);
    ctx.print(
      [
        result.dryRun ? 'DRY RUN — nothing was removed.' : '',
        table(
          ['organization', 'kept', result.dryRun ? 'would remove' : 'removed'],
          result.organizations.map((o) => [o.orgId, String(o.kept), o.removed.join(' ') || '-']),
        ),
        `${removed} backup(s) ${result.dryRun ? 'would be' : 'were'} removed from ${result.organizations.length} organization(s)`,
      ]
        .filter((l) => l !== '')
        .join('\n'),
      { ok: true, ...result },
    );
    return ExitCode.Ok;
  },
});
