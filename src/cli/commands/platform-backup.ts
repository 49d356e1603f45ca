import type { PlatformDumpSummary } from '../../workflows/platform-dump';
import { formatBytes } from '../../platform/describe';
import { noArguments } from '../arguments';
import { defineCommand } from '../command';
import { finishStarted, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';

export const platformBackupCommand = defineCommand({
  name: 'platform-backup',
  usage: '',
  summary: 'back up the whole platform: every database, then every organization',
  description:
    'Dumps every PostgreSQL database (with the roles) and every ClickHouse database into _platform/<id>, restorable into an empty cluster with platform-restore, then backs up each organization.',
  options: [
    { name: 'reason', kind: 'value', placeholder: '<text>', description: 'why, recorded with the backup' },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    noArguments(positionals);
    const run = startedRunSettings(options);
    const client = await ctx.connect();
    const started = await client.startPlatformBackup({ reason: options.reason ?? 'on demand (CLI)' }, run.request);
    return finishStarted(ctx, client, started.workflowId, run, (result) => {
      const r = result as {
        platformBackupId?: string;
        succeeded?: number;
        failed?: unknown[];
        platformDump?: PlatformDumpSummary;
      };
      const dump = r.platformDump;
      return [
        `platform backup ${r.platformBackupId}`,
        dump
          ? `  dump: ${dump.artifacts} artifacts, ${formatBytes(dump.bytes)}, ${dump.organizations.length} organizations`
          : '  dump: none',
        `  organization backups: ${r.succeeded ?? 0} succeeded, ${r.failed?.length ?? 0} failed`,
      ].join('\n');
    });
  },
});
