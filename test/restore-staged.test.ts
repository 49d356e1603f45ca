import { readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { backupManifestSchema } from '../src/contracts/backup';
import { organizationDataMap } from '../src/platform/data-map';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { writeArtifact } from '../src/storage/backup-store';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { backupOrganization, restoreOrganization } from '../src/workflows';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * A restore never makes its target worse: the backup is loaded and proven in scratch databases
 * first, so a load that fails midway never touches the live organization, and a `replace` is only
 * done under a verified safety backup. The original is compared by plain SQL (row texts, table
 * OIDs, ClickHouse metadata times), never by the project's fingerprint.
 */
describe('restoreOrganization stages and proves before it touches the target', () => {
  let env: TestWorker;
  const orgId = uniqueOrgId('rstg');

  beforeAll(async () => {
    env = await startTestWorker('restore-staged');
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'staged' });
  });
  afterAll(async () => {
    if (env) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      await env.shutdown();
    }
  });

  const backUp = () =>
    env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'staged restore test', verify: false }],
    });
  const replace = (backupId: string) =>
    env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${orgId}-${Date.now()}`,
      args: [{ backupId, orgId, mode: 'replace' as const }],
    });

  /** The organization as plain queries see it: every table's OID and sorted row texts, and ClickHouse's tables, metadata times and sorted rows. */
  async function snapshot(): Promise<Record<string, string>> {
    const map = organizationDataMap(orgId);
    const out: Record<string, string> = {};
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
    for (const table of ['organizations', 'users', 'user_roles', 'api_keys']) {
      const key = table === 'organizations' ? 'id' : 'org_id';
      const rows = await env.clients.postgres.query<{ text: string }>(
        `SELECT string_agg(r::text, E'\\n' ORDER BY r::text) AS text FROM public.${table} r WHERE ${key} = $1`,
        [orgId],
      );
      out[`pg public.${table}`] = rows.rows[0]?.text ?? '';
    }
    const chTables = (await (
      await env.clients.clickhouse.query({
        query: `SELECT name, toString(metadata_modification_time) AS modified FROM system.tables WHERE database = '${map.clickhouse.database}' ORDER BY name`,
        format: 'JSONEachRow',
      })
    ).json()) as Array<{ name: string; modified: string }>;
    expect(chTables.length).toBeGreaterThan(2);
    for (const t of chTables) {
      const text = await (
        await env.clients.clickhouse.query({
          query: `SELECT * FROM ${map.clickhouse.database}.\`${t.name}\``,
          format: 'TabSeparated',
        })
      ).text();
      out[`ch ${t.name}`] = `modified ${t.modified}\n${text.split('\n').sort().join('\n')}`;
    }
    return out;
  }

  it('a replace whose load fails midway (a ClickHouse table this server refuses) leaves the original identical: same rows, same tables, never dropped', async () => {
    const backup = await backUp();
    // A table as a modern server would back it up (a Map column, which ClickHouse 18 refuses): the
    // staged load creates and fills the tables before it, then the server refuses this one.
    const manifestPath = path.join(env.config.backup.directory, orgId, backup.backupId, 'manifest.json');
    const manifest = backupManifestSchema.parse(JSON.parse(await readFile(manifestPath, 'utf8')));
    const store = createFilesystemBackupStore(env.config.backup);
    const ddlFile = 'clickhouse/zz_modern.sql';
    const record = await writeArtifact(
      store,
      { orgId, backupId: backup.backupId, path: ddlFile },
      Readable.from([
        `CREATE TABLE org_${orgId}.zz_modern (id UInt64, attributes Map(String, String)) ENGINE = MergeTree ORDER BY id\n`,
      ]),
      { alreadyCompressed: false },
    );
    manifest.artifacts.push({
      store: 'clickhouse',
      object: 'clickhouse-ddl:zz_modern',
      file: ddlFile,
      ...record,
      rows: null,
    });
    await writeFile(manifestPath, JSON.stringify(manifest));

    // Changed after the backup, so a restore that did anything to the target would show.
    await env.clients.postgres.query(
      `UPDATE org_${orgId}.entity_definitions SET name = name || ' (edited)' WHERE ctid IN (SELECT ctid FROM org_${orgId}.entity_definitions LIMIT 1)`,
    );
    const before = await snapshot();
    const failure = failureText(await rejectionOf(replace(backup.backupId)));
    expect(failure).toMatch(
      /stopped while loading its staged copy.*cannot create table zz_modern[\s\S]*nothing was changed/,
    );
    expect(await snapshot()).toEqual(before);
  }, 300_000);

  it('a replace takes a verified safety backup before anything is dropped, and reports the staged proof', async () => {
    const backup = await backUp();
    const result = await replace(backup.backupId);
    expect(result.safetyBackupId).toBeDefined();
    expect(result.comparisons.length).toBeGreaterThan(5);
    expect(result.comparisons.every((c) => c.equal)).toBe(true);
    const verification = JSON.parse(
      await readFile(
        path.join(env.config.backup.directory, orgId, result.safetyBackupId ?? '', 'verification.json'),
        'utf8',
      ),
    ) as { result: string };
    expect(verification.result).toBe('passed');
  });
});
