import type { RestorePlatformResult, VerifyPlatformBackupResult } from '../../contracts/platform-backup';
import { one } from '../arguments';
import { defineCommand } from '../command';
import { confirm } from '../confirmation';
import { finishStarted, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';

const TARGET_OPTIONS = [
  {
    name: 'postgres',
    kind: 'value',
    placeholder: '<url>',
    description: 'the empty PostgreSQL cluster, postgres://superuser@host:port/postgres',
    required: true,
  },
  {
    name: 'clickhouse',
    kind: 'value',
    placeholder: '<url>',
    description: 'the empty ClickHouse server, http://user:password@host:8123',
    required: true,
  },
  {
    name: 'clickhouse-backup',
    kind: 'value',
    placeholder: '<id>',
    description:
      'the platform backup holding the ClickHouse dump, when another than <backup> (the daily schedules take them apart)',
  },
  { name: 'jobs', kind: 'value', placeholder: 'N', description: 'parallel pg_restore jobs (default 2)' },
] as const;

/** The restore/verification target both commands take: the backup and the two servers' addresses. */
function targetInput(
  backupId: string,
  options: Partial<Record<'postgres' | 'clickhouse' | 'clickhouse-backup' | 'jobs', string>>,
): { backupId: string; postgresUrl: string; clickhouseUrl: string; clickhouseBackupId?: string; jobs?: number } {
  return {
    backupId,
    postgresUrl: options.postgres ?? '',
    clickhouseUrl: options.clickhouse ?? '',
    ...(options['clickhouse-backup'] !== undefined ? { clickhouseBackupId: options['clickhouse-backup'] } : {}),
    ...(options.jobs !== undefined ? { jobs: Number(options.jobs) } : {}),
  };
}

export const platformRestoreCommand = defineCommand({
  name: 'platform-restore',
  usage: '<backup>',
  summary: 'restore a platform backup into an empty cluster',
  description:
    'Restores every database of a platform backup into an EMPTY PostgreSQL cluster and ClickHouse server (refused otherwise), deletes again every organization the deletion log says is deleted, and proves every fingerprint. Asks on a terminal, requires --confirm <backup> otherwise.',
  options: [
    ...TARGET_OPTIONS,
    { name: 'confirm', kind: 'value', placeholder: '<backup>', description: 'repeat the backup id' },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    const backupId = one(positionals, 'platform backup id');
    const run = startedRunSettings(options);
    await confirm(ctx, options.confirm, backupId, `this restores platform backup ${backupId} into the target servers`);
    const client = await ctx.connect();
    const started = await client.startPlatformRestore(targetInput(backupId, options), run.request);
    return finishStarted(ctx, client, started.workflowId, run, (result) => {
      const r = result as RestorePlatformResult;
      return [
        `platform backup ${r.backupId} restored: PostgreSQL ${r.postgresDatabases.join(', ')}; ClickHouse ${r.clickhouseDatabases.join(', ')}`,
        ...r.organizations.map((o) => `  ${o.orgId}: ${o.outcome}`),
        `  deleted again: ${r.deletionsReapplied.join(', ') || '-'}; ${r.platformObjects} objects outside organizations equal`,
      ].join('\n');
    });
  },
});

export const platformVerifyCommand = defineCommand({
  name: 'platform-verify',
  usage: '<backup>',
  summary: 'restore a platform backup into empty scratch servers and compare',
  description:
    'Restores a platform backup into an empty scratch PostgreSQL cluster and ClickHouse server, compares every fingerprint with the backup, and empties the scratch servers again.',
  options: [...TARGET_OPTIONS, ...STARTED_RUN_OPTIONS],
  async run(ctx, { positionals, options }) {
    const backupId = one(positionals, 'platform backup id');
    const run = startedRunSettings(options);
    const client = await ctx.connect();
    const started = await client.startPlatformVerification(targetInput(backupId, options), run.request);
    return finishStarted(ctx, client, started.workflowId, run, (result) => {
      const r = result as VerifyPlatformBackupResult;
      return r.passed
        ? `platform backup ${r.backupId} verified: ${r.organizations} organizations and ${r.platformObjects} other objects equal`
        : `platform backup ${r.backupId} FAILED verification:\n${r.differences.map((d) => `  ${d}`).join('\n')}`;
    });
  },
});
