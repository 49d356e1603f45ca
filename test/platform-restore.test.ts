import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { Pool } from 'pg';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { createClickHouseClient, databaseUrl } from '../src/store-clients';
import { backupPlatform, deleteOrganization, restorePlatform, verifyPlatformBackup } from '../src/workflows';
import { failureText, rejectionOf } from './support/failures';
import { startScratchClickHouse, startScratchPostgres, type ScratchServer } from './support/scratch-servers';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * The runbook's whole-platform path on servers this file owns: a source PostgreSQL cluster and
 * ClickHouse server (the "platform", with three organizations and data of no organization) and an
 * empty second pair to restore into, all started here and removed at the end.
 */
describe('whole-platform backup, verification and restore into an empty cluster', () => {
  const servers: ScratchServer[] = [];
  let target: { postgres: ScratchServer; clickhouse: ScratchServer };
  let env: TestWorker;
  let backupDir: string;
  const orgs = [uniqueOrgId('pfa'), uniqueOrgId('pfb'), uniqueOrgId('pfc')];
  const deleted = orgs[2] ?? '';
  let backupId = '';

  const query = async <T extends object>(url: string, sql: string): Promise<T[]> => {
    const pool = new Pool({ connectionString: url, max: 1 });
    try {
      return (await pool.query<T>(sql)).rows;
    } finally {
      await pool.end();
    }
  };
  const chQuery = async (url: string, sql: string): Promise<string> => {
    const client = createClickHouseClient({ url });
    try {
      return await (await client.query({ query: sql, format: 'TabSeparated' })).text();
    } finally {
      await client.close();
    }
  };

  beforeAll(async () => {
    const started = await Promise.all([
      startScratchPostgres(),
      startScratchClickHouse(),
      startScratchPostgres(),
      startScratchClickHouse(),
    ]);
    servers.push(...started);
    const [sp, sc, tp, tc] = started as [ScratchServer, ScratchServer, ScratchServer, ScratchServer];
    target = { postgres: tp, clickhouse: tc };
    await query(sp.url, 'CREATE DATABASE eloquent');
    backupDir = await mkdtemp(path.join(tmpdir(), 'platform-restore-backups-'));
    env = await startTestWorker('platform-restore', {
      POSTGRES_URL: databaseUrl(sp.url, 'eloquent'),
      CLICKHOUSE_URL: sc.url,
      BACKUP_DIR: backupDir,
      BACKUP_STORE: 'filesystem',
      BACKUP_MASTER_KEY: randomBytes(32).toString('base64'),
    });
    for (const orgId of orgs) await seedOrganization(env.clients, orgId, { scale: 'small', seed: orgId });
    // What belongs to no organization: a role, a schema of the platform database, another database,
    // a ClickHouse database and a table in `default`.
    await query(
      databaseUrl(sp.url, 'eloquent'),
      `CREATE ROLE reporting LOGIN;
       CREATE SCHEMA billing;
       CREATE TABLE billing.invoices (id serial PRIMARY KEY, amount numeric(12,2), note text, issued timestamptz DEFAULT now());
       INSERT INTO billing.invoices (amount, note) SELECT g * 1.5, 'invoice ' || g FROM generate_series(1, 500) g;
       GRANT SELECT ON billing.invoices TO reporting;`,
    );
    await query(sp.url, 'CREATE DATABASE side_db');
    await query(
      databaseUrl(sp.url, 'side_db'),
      `CREATE TABLE feature_flags (name text PRIMARY KEY, enabled boolean);
       INSERT INTO feature_flags VALUES ('dark_mode', true), ('beta', false);`,
    );
    const ch = createClickHouseClient({ url: sc.url });
    try {
      await ch.command({ query: 'CREATE DATABASE platform_metrics' });
      await ch.command({
        query:
          'CREATE TABLE platform_metrics.requests (day Date, path String, hits UInt64) ENGINE = MergeTree ORDER BY (day, path)',
      });
      await ch.command({
        query:
          "INSERT INTO platform_metrics.requests SELECT toDate('2026-11-01') + number % 30, concat('/p', toString(number % 7)), number FROM system.numbers LIMIT 2000",
      });
      await ch.command({ query: 'CREATE TABLE default.notes (id UInt32, text String) ENGINE = TinyLog' });
      await ch.command({ query: "INSERT INTO default.notes VALUES (1, 'kept'), (2, 'also kept')" });
    } finally {
      await ch.close();
    }
  }, 240_000);

  afterAll(async () => {
    if (env) {
      // NATS and Redis are the shared ones: remove what the seed put there.
      for (const orgId of orgs) await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await env.shutdown();
    }
    await Promise.all(servers.map((s) => s.stop()));
    if (backupDir) await rm(backupDir, { recursive: true, force: true });
  }, 120_000);

  it('backupPlatform writes a dump of every database of both stores, encrypted, with a manifest written last', async () => {
    const result = await env.client.workflow.execute(backupPlatform, {
      taskQueue: env.taskQueue,
      workflowId: `backup-platform-full-${Date.now()}`,
      args: [{ reason: 'platform test' }],
    });
    expect(result.succeeded).toBe(3);
    expect(result.platformDump?.organizations).toEqual([...orgs].sort());
    backupId = result.platformBackupId;
    const postgres = result.platformDump?.parts.find((p) => p.store === 'postgres');
    const clickhouse = result.platformDump?.parts.find((p) => p.store === 'clickhouse');
    expect(postgres?.databases).toEqual(['eloquent', 'postgres', 'side_db']);
    expect(clickhouse?.databases).toEqual(
      expect.arrayContaining(['default', 'platform_metrics', ...orgs.map((o) => `org_${o}`)]),
    );
    const folder = path.join(backupDir, '_platform', backupId);
    const manifest = JSON.parse(await readFile(path.join(folder, 'manifest.json'), 'utf8')) as {
      parts: Array<{ artifacts: Array<{ file: string; encrypted: boolean }> }>;
    };
    const artifacts = manifest.parts.flatMap((p) => p.artifacts);
    expect(artifacts.map((a) => a.file)).toEqual(
      expect.arrayContaining([
        'postgres/globals.sql',
        'postgres/databases/eloquent.dump',
        'postgres/databases/side_db.dump',
      ]),
    );
    expect(artifacts.every((a) => a.encrypted)).toBe(true);
    // The role's name is in the globals, which are encrypted at rest: no stored byte shows it.
    const globals = await readFile(path.join(folder, 'postgres', 'globals.sql'));
    expect(globals.includes(Buffer.from('reporting'))).toBe(false);
    expect(await readdir(path.join(folder, 'postgres', 'databases'))).toContain('eloquent.dump');
  }, 300_000);

  it('verifyPlatformBackup restores into the empty scratch servers, every fingerprint matches, and empties them again', async () => {
    const result = await env.client.workflow.execute(verifyPlatformBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-platform-${backupId}-${Date.now()}`,
      args: [{ backupId, postgresUrl: target.postgres.url, clickhouseUrl: target.clickhouse.url }],
    });
    expect(result).toMatchObject({ passed: true, organizations: 3, differences: [] });
    expect(result.platformObjects).toBeGreaterThanOrEqual(4);
    const databases = await query<{ datname: string }>(
      target.postgres.url,
      'SELECT datname FROM pg_database ORDER BY 1',
    );
    expect(databases.map((d) => d.datname)).toEqual(['postgres', 'template0', 'template1']);
    expect(
      (await chQuery(target.clickhouse.url, 'SELECT name FROM system.databases ORDER BY name')).trim().split('\n'),
    ).toEqual(['default', 'system']);
  }, 300_000);

  it('an organization deleted after the backup stays deleted after restorePlatform, and everything else comes back equal', async () => {
    await env.client.workflow.execute(deleteOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `delete-org-${deleted}`,
      args: [
        {
          orgId: deleted,
          confirmOrgId: deleted,
          requestedBy: 'platform-restore test',
          reason: 'deleted after the platform backup',
          skipBackup: true,
          gracePeriod: '0s',
        },
      ],
    });
    const result = await env.client.workflow.execute(restorePlatform, {
      taskQueue: env.taskQueue,
      workflowId: `restore-platform-${Date.now()}`,
      args: [{ backupId, postgresUrl: target.postgres.url, clickhouseUrl: target.clickhouse.url, requestedBy: 'test' }],
    });
    expect(result.deletionsReapplied).toEqual([deleted]);
    expect(result.platformDifferences).toEqual([]);
    expect(result.organizations).toEqual(
      [...orgs].sort().map((orgId) => ({ orgId, outcome: orgId === deleted ? 'deleted' : 'matches' })),
    );
    // Checked with plain queries on the restored servers, not with the project's fingerprint.
    const platformDb = databaseUrl(target.postgres.url, 'eloquent');
    const schemas = await query<{ nspname: string }>(
      platformDb,
      "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'org\\_%' ORDER BY 1",
    );
    expect(schemas.some((s) => s.nspname.startsWith(`org_${deleted}`))).toBe(false);
    for (const orgId of orgs.filter((o) => o !== deleted))
      expect(schemas.map((s) => s.nspname)).toContain(`org_${orgId}`);
    const rows = await query<{ n: string }>(
      platformDb,
      `SELECT count(*)::text AS n FROM public.organizations WHERE id = '${deleted}'`,
    );
    expect(rows[0]?.n).toBe('0');
    const invoices = await query<{ n: string; sum: string }>(
      platformDb,
      'SELECT count(*)::text AS n, sum(amount)::text AS sum FROM billing.invoices',
    );
    expect(invoices[0]).toEqual({ n: '500', sum: '187875.00' });
    const flags = await query<{ name: string }>(
      databaseUrl(target.postgres.url, 'side_db'),
      'SELECT name FROM feature_flags ORDER BY 1',
    );
    expect(flags.map((f) => f.name)).toEqual(['beta', 'dark_mode']);
    expect(await query(target.postgres.url, "SELECT 1 FROM pg_roles WHERE rolname = 'reporting'")).toHaveLength(1);
    const chDatabases = (await chQuery(target.clickhouse.url, 'SELECT name FROM system.databases')).trim().split('\n');
    expect(chDatabases).not.toContain(`org_${deleted}`);
    expect(
      (await chQuery(target.clickhouse.url, 'SELECT count(), sum(hits) FROM platform_metrics.requests')).trim(),
    ).toBe('2000\t1999000');
    expect((await chQuery(target.clickhouse.url, 'SELECT text FROM default.notes ORDER BY id')).trim()).toBe(
      'kept\nalso kept',
    );
  }, 300_000);

  it('refuses a target that is not empty, naming what it found, and changes nothing', async () => {
    const failure = await rejectionOf(
      env.client.workflow.execute(restorePlatform, {
        taskQueue: env.taskQueue,
        workflowId: `restore-platform-refused-${Date.now()}`,
        args: [{ backupId, postgresUrl: target.postgres.url, clickhouseUrl: target.clickhouse.url }],
      }),
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    // Both servers are checked and both named, before either is touched.
    expect(failureText(failure)).toMatch(
      /\[postgres object=127\.0\.0\.1:\d+\/postgres\] the target cluster is not empty \(database eloquent, database side_db, role reporting/,
    );
    expect(failureText(failure)).toMatch(
      /\[clickhouse object=127\.0\.0\.1:\d+\] the target server is not empty \(database org_/,
    );
  }, 120_000);
});
