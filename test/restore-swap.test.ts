import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { organizationDataMap } from '../src/platform/data-map';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { backupOrganization, restoreOrganization } from '../src/workflows';
import { swapNames } from '../src/workflows/restore-organization';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

const run = promisify(execFile);

/**
 * A `replace` loads the backup beside the original: PostgreSQL schemas renamed aside, ClickHouse
 * tables staged and swapped in by RENAME. A load that fails midway renames the original back, so
 * it is the same organization (same table OIDs, same DDL, same rows), not one rebuilt from the
 * safety backup. The original is compared by pg_dump and plain SQL, never the project's fingerprint.
 */
describe('a replace restore keeps the original beside the new copy until the copy is in place', () => {
  let env: TestWorker;
  const orgId = uniqueOrgId('rswp');
  const map = organizationDataMap(orgId);
  const refuseIndexes = `eloquent_test_refuse_${orgId}`;

  beforeAll(async () => {
    env = await startTestWorker('restore-swap');
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'swap' });
  });
  afterAll(async () => {
    if (env) {
      await dropRefusal().catch(() => undefined);
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      await env.shutdown();
    }
  });

  const backUp = () =>
    env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'swap restore test', verify: false }],
    });
  const startReplace = (backupId: string) =>
    env.client.workflow.start(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${orgId}-${Date.now()}`,
      args: [{ backupId, orgId, mode: 'replace' as const }],
    });
  const editAfterBackup = (mark: string) =>
    env.clients.postgres.query(
      `UPDATE org_${orgId}.entity_definitions SET name = name || ' (${mark})' WHERE ctid IN (SELECT ctid FROM org_${orgId}.entity_definitions ORDER BY id LIMIT 1)`,
    );

  /**
   * Makes the platform database refuse `CREATE INDEX` in the organization's main schema (an event
   * trigger, so the scratch databases of the staged proof are not affected): `pg_restore` into the
   * target then fails midway, after its tables and rows, at the index of entity_definitions.
   */
  async function refuseIndexesInTarget(): Promise<void> {
    await env.clients.postgres.query(`
      CREATE FUNCTION public.${refuseIndexes}() RETURNS event_trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE schema_name = '${map.postgres.mainSchema}') THEN
          RAISE EXCEPTION 'test refuses CREATE INDEX in ${map.postgres.mainSchema}';
        END IF;
      END $$;
      CREATE EVENT TRIGGER ${refuseIndexes} ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
        EXECUTE FUNCTION public.${refuseIndexes}();`);
  }
  async function dropRefusal(): Promise<void> {
    await env.clients.postgres.query(`DROP EVENT TRIGGER IF EXISTS ${refuseIndexes}`);
    await env.clients.postgres.query(`DROP FUNCTION IF EXISTS public.${refuseIndexes}()`);
  }

  /** The organization as pg_dump and plain queries see it: DDL, table OIDs, sorted rows; ClickHouse DDL, counts and row hashes. */
  async function snapshot(): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const bin = env.config.postgres.binDir ? path.join(env.config.postgres.binDir, 'pg_dump') : 'pg_dump';
    const dump = await run(bin, [
      '--schema-only',
      ...map.postgres.schemas.map((s) => `--schema=${s}`),
      `--dbname=${env.config.postgres.url}`,
    ]);
    // `\restrict <random key>` (pg_dump 15.14 and later) differs on every run.
    out['pg_dump --schema-only'] = dump.stdout.replace(/^\\(un)?restrict .*$/gm, '');
    const tables = await env.clients.postgres.query<{ schema: string; name: string; oid: string }>(
      `SELECT n.nspname AS schema, c.relname AS name, c.oid::text AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') ORDER BY 1, 2`,
      [map.postgres.schemas],
    );
    expect(tables.rows.length).toBeGreaterThan(3);
    for (const t of tables.rows) {
      const rows = await env.clients.postgres.query<{ text: string }>(
        `SELECT string_agg(r::text, E'\\n' ORDER BY r::text) AS text FROM "${t.schema}"."${t.name}" r`,
      );
      out[`pg ${t.schema}.${t.name}`] = `oid ${t.oid}\n${rows.rows[0]?.text ?? ''}`;
    }
    for (const table of map.postgres.sharedTables) {
      const rows = await env.clients.postgres.query<{ text: string }>(
        `SELECT string_agg(r::text, E'\\n' ORDER BY r::text) AS text FROM ${table.schema}.${table.table} r WHERE ${table.keyColumn} = $1`,
        [orgId],
      );
      out[`pg ${table.schema}.${table.table}`] = rows.rows[0]?.text ?? '';
    }
    const db = map.clickhouse.database;
    const chTables = (await (
      await env.clients.clickhouse.query({
        query: `SELECT name FROM system.tables WHERE database = '${db}' ORDER BY name`,
        format: 'JSONEachRow',
      })
    ).json()) as Array<{ name: string }>;
    expect(chTables.length).toBeGreaterThan(2);
    for (const { name } of chTables) {
      const ddl = await (
        await env.clients.clickhouse.query({ query: `SHOW CREATE TABLE ${db}.\`${name}\``, format: 'TabSeparatedRaw' })
      ).text();
      const sums = await (
        await env.clients.clickhouse.query({
          query: `SELECT count(), sum(cityHash64(toString(tuple(*)))) FROM ${db}.\`${name}\``,
          format: 'TabSeparated',
        })
      ).text();
      out[`ch ${name}`] = `${ddl}\n${sums}`;
    }
    return out;
  }

  /** What a run with this id left beside the organization: aside schemas, their records, staging and aside databases. */
  async function leftovers(runId: string): Promise<string[]> {
    const names = swapNames(runId);
    const schemas = await env.clients.postgres.query<{ nspname: string }>(
      'SELECT nspname FROM pg_namespace WHERE left(nspname, length($1)) = $1',
      [names.postgresAside],
    );
    const records = await env.clients.postgres.query<{ aside_schema: string }>(
      `SELECT aside_schema FROM eloquent_ops.restore_asides WHERE target_org = $1`,
      [orgId],
    );
    const databases = (await (
      await env.clients.clickhouse.query({
        query: `SELECT name FROM system.databases WHERE name IN ('${names.clickhouseStaging}', '${names.clickhouseAside}')`,
        format: 'JSONEachRow',
      })
    ).json()) as Array<{ name: string }>;
    return [
      ...schemas.rows.map((r) => `schema ${r.nspname}`),
      ...records.rows.map((r) => `record ${r.aside_schema}`),
      ...databases.map((d) => `database ${d.name}`),
    ];
  }

  it('a replace whose PostgreSQL load fails midway leaves the original identical, renamed back without the safety backup', async () => {
    const backup = await backUp();
    await editAfterBackup('edited before a failed replace');
    await refuseIndexesInTarget();
    let failure: string;
    let runId: string;
    try {
      const before = await snapshot();
      const handle = await startReplace(backup.backupId);
      runId = handle.firstExecutionRunId;
      failure = failureText(await rejectionOf(handle.result()));
      expect(await snapshot()).toEqual(before);
    } finally {
      await dropRefusal();
    }
    expect(failure).toMatch(/failed at step "postgres".*test refuses CREATE INDEX/);
    // Both stores were undone by renaming: ClickHouse had been swapped in before PostgreSQL failed.
    expect(failure).toMatch(/ClickHouse tables of \S+ were renamed back/);
    expect(failure).toMatch(/PostgreSQL schemas of \S+ were renamed back/);
    expect(failure).not.toMatch(/put back from/);
    const safety = /is as it was \(renamed back\); verified safety backup (\S+) holds it too/.exec(failure)?.[1];
    expect(safety).toBeDefined();
    const verification = JSON.parse(
      await readFile(path.join(env.config.backup.directory, orgId, safety ?? '', 'verification.json'), 'utf8'),
    ) as { result: string };
    expect(verification.result).toBe('passed');
    expect(await leftovers(runId)).toEqual([]);
  }, 300_000);

  it('a successful replace puts the backup in place as new tables and leaves nothing aside or staged', async () => {
    const backup = await backUp();
    const edited = await editAfterBackup('edited after the backup');
    expect(edited.rowCount).toBe(1);
    const before = await snapshot();
    const handle = await startReplace(backup.backupId);
    const result = await handle.result();
    expect(result.comparisons.every((c) => c.equal)).toBe(true);
    const after = await snapshot();
    // New tables (other OIDs), and the edit made after the backup is gone.
    const table = `pg ${map.postgres.mainSchema}.entity_definitions`;
    expect(after[table]?.split('\n')[0]).not.toBe(before[table]?.split('\n')[0]);
    expect(after[table]).not.toMatch(/edited after the backup/);
    expect(before[table]).toMatch(/edited after the backup/);
    expect(await leftovers(handle.firstExecutionRunId)).toEqual([]);
  }, 300_000);

  it('with a ClickHouse view (RENAME cannot swap it in on ClickHouse 18) ClickHouse is cleared and loaded, and put back from the safety backup when PostgreSQL then fails', async () => {
    const db = map.clickhouse.database;
    await env.clients.clickhouse.command({
      query: `CREATE VIEW ${db}.node_labels AS SELECT id, label FROM ${db}.kg_nodes`,
    });
    const backup = await backUp();
    await editAfterBackup('edited before a failed replace with a view');
    await refuseIndexesInTarget();
    let failure: string;
    try {
      const before = await snapshot();
      failure = failureText(await rejectionOf(startReplace(backup.backupId).then((h) => h.result())));
      expect(await snapshot()).toEqual(before);
    } finally {
      await dropRefusal();
    }
    expect(failure).toMatch(/failed at step "postgres"/);
    expect(failure).toMatch(/ClickHouse of \S+ was put back from verified safety backup/);
    expect(failure).toMatch(
      /is as it was \(PostgreSQL renamed back, ClickHouse put back from verified safety backup \S+\)/,
    );
  }, 300_000);
});
