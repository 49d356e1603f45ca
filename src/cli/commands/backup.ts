import { BACKUP_STORES, type BackupStoreName } from '../../contracts/backup';
import { formatBytes } from '../../platform/describe';
import { one } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode, UsageError } from '../exit-codes';
import { follow, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';

/** `postgres,clickhouse` as the backup's store list. */
function parseStores(text: string): BackupStoreName[] {
  return text.split(',').map((raw) => {
    const store = BACKUP_STORES.find((s) => s === raw.trim());
    if (store === undefined)
      throw new UsageError(
        `--stores: unknown store ${JSON.stringify(raw.trim())}; expected ${BACKUP_STORES.join(', ')}`,
      );
    return store;
  });
}

export const backupCommand = defineCommand({
  name: 'backup',
  usage: '<org>',
  summary: 'back up an organization, showing progress',
  description: 'Backs up one organization and prints each artifact as it is written.',
  options: [
    {
      name: 'reason',
      kind: 'value',
      placeholder: '<text>',
      description: 'why, recorded with the backup (default: "on demand (CLI)")',
    },
    {
      name: 'stores',
      kind: 'value',
      placeholder: 'postgres,clickhouse',
      description: `only these stores, comma-separated: ${BACKUP_STORES.join(', ')} (default: all)`,
    },
    { name: 'verify', kind: 'flag', description: 'verify the backup once it is written' },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    const orgId = one(positionals, 'organization id');
    const run = startedRunSettings(options);
    const client = await ctx.connect();
    const started = await client.startBackup(
      {
        orgId,
        ...(options.reason !== undefined ? { reason: options.reason } : { reason: 'on demand (CLI)' }),
        ...(options.stores !== undefined ? { stores: parseStores(options.stores) } : {}),
        verify: options.verify ?? false,
      },
      run.request,
    );
    ctx.progress(`started ${started.workflowId} (run ${started.runId})`);
    if (!run.wait) {
      ctx.print(started.workflowId, { ok: true, workflowId: started.workflowId, runId: started.runId });
      return ExitCode.Ok;
    }
    const summary = await follow(ctx, client, started.workflowId, run.pollMs);
    const s = summary as { backupId?: string; artifacts?: number; bytes?: number; durationMs?: number };
    ctx.print(
      `backup ${s.backupId} of ${orgId}: ${s.artifacts} artifacts, ${formatBytes(s.bytes ?? 0)} in ${((s.durationMs ?? 0) / 1000).toFixed(1)} s`,
      {
        ok: true,
        workflowId: started.workflowId,
        result: summary,
      },
    );
    return ExitCode.Ok;
  },
});
