import { readdir, readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { backupManifestSchema, type BackupManifest } from '../src/contracts/backup';
import { organizationDataMap } from '../src/platform/data-map';
import { seedOrganization } from '../src/platform/seed-organization';
import { backupOrganization, restoreOrganization, verifyBackup } from '../src/workflows';
import { failureText, rejectionOf } from './support/failures';
import { openActivities, openWhenScheduled } from './support/history-activities';
import { dropTestOrganizations } from './support/organizations';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * ClickHouse databases shaped as users shape them, not as our seed does: materialized views (with
 * an implicit inner table and with `TO`), plain views whose names sort before their sources, a
 * Buffer over the organization's own table, names with spaces, slashes, dots and unicode.
 */
describe('ClickHouse fidelity', () => {
  let env: TestWorker;
  const created: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('chfidelity');
  });
  afterAll(async () => {
    if (env) {
      await dropTestOrganizations(env, created);
      await env.shutdown();
    }
  });

  const dbOf = (orgId: string) => organizationDataMap(orgId).clickhouse.database;
  const ch = (query: string) => env.clients.clickhouse.command({ query });
  const rowsOf = async (query: string): Promise<unknown[]> =>
    (await env.clients.clickhouse.query({ query, format: 'JSONEachRow' })).json<unknown>();
  const countOf = async (query: string): Promise<number> =>
    Number(z.array(z.object({ n: z.union([z.string(), z.number()]) })).parse(await rowsOf(query))[0]?.n);
  const newOrganization = async (prefix: string): Promise<string> => {
    const orgId = uniqueOrgId(prefix);
    created.push(orgId);
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: prefix });
    return orgId;
  };
  const newCloneId = (prefix: string): string => {
    const orgId = uniqueOrgId(prefix);
    created.push(orgId);
    return orgId;
  };
  const backUp = (orgId: string) =>
    env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'clickhouse fidelity test', verify: false }],
    });
  /**
   * A backup that must fail: returns its failure once it has, after checking that the store backup
   * beside the failed one was stopped before the run ended and that nothing of it is left on disk.
   */
  const backUpFailing = async (orgId: string): Promise<unknown> => {
    const handle = await env.client.workflow.start(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'clickhouse fidelity test', verify: false }],
    });
    const failure = await rejectionOf(handle.result());
    const history = await handle.fetchHistory();
    expect(openWhenScheduled(history, 'discardIncompleteBackup')).toEqual([]);
    expect(openActivities(history)).toEqual([]);
    const left = await readdir(path.join(env.config.backup.directory, orgId)).catch(() => []);
    expect(left).toEqual([]);
    return failure;
  };
  const verify = (backupId: string) =>
    env.client.workflow.execute(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-${backupId}`,
      args: [{ backupId }],
    });
  const clone = (orgId: string, backupId: string, targetOrgId: string) =>
    env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${targetOrgId}-${Date.now()}`,
      args: [{ backupId, orgId, targetOrgId }],
    });
  const manifestOf = async (orgId: string, backupId: string): Promise<BackupManifest> =>
    backupManifestSchema.parse(
      JSON.parse(await readFile(path.join(env.config.backup.directory, orgId, backupId, 'manifest.json'), 'utf8')),
    );
  const sumsOf = (db: string) =>
    rowsOf(`SELECT k, toString(sum(total)) AS total FROM ${db}.acc_mv GROUP BY k ORDER BY k`);

  it('a materialized view with an implicit inner table, a column named "the key" and a table named "odd/na.me ü" back up, verify and clone with the view\'s rows', async () => {
    const orgId = await newOrganization('chmv');
    const db = dbOf(orgId);
    await ch(`CREATE TABLE ${db}.scores (\`the key\` String, n UInt64) ENGINE = MergeTree ORDER BY \`the key\``);
    await ch(
      `CREATE MATERIALIZED VIEW ${db}.acc_mv ENGINE = SummingMergeTree ORDER BY k AS SELECT \`the key\` AS k, sum(n) AS total FROM ${db}.scores GROUP BY k`,
    );
    await ch(`CREATE TABLE ${db}.\`odd/na.me ü\` (id UInt8, \`what's this\` String) ENGINE = Memory`);
    await ch(`INSERT INTO ${db}.scores VALUES ('a', 1), ('b', 2), ('a', 3)`);
    await ch(`INSERT INTO ${db}.scores VALUES ('a', 10), ('c', 4)`);
    await ch(`INSERT INTO ${db}.\`odd/na.me ü\` VALUES (1, 'x'), (2, 'y')`);
    const sourceSums = await sumsOf(db);
    expect(sourceSums).toEqual([
      { k: 'a', total: '14' },
      { k: 'b', total: '2' },
      { k: 'c', total: '4' },
    ]);

    const backup = await backUp(orgId);
    const manifest = await manifestOf(orgId, backup.backupId);
    const artifact = (object: string) => manifest.artifacts.find((a) => a.object === object);
    expect(artifact('clickhouse:acc_mv')?.rows).toBe(4);
    expect(artifact('clickhouse-ddl:acc_mv')).toBeDefined();
    expect(artifact('clickhouse:scores')?.rows).toBe(5);
    expect(artifact('clickhouse:odd/na.me ü')?.rows).toBe(2);
    // Each artifact is one file right under clickhouse/, named without spaces, dots or slashes of its own.
    for (const a of manifest.artifacts.filter((x) => x.store === 'clickhouse'))
      expect(a.file).toMatch(/^clickhouse\/[a-z0-9_A-F-]+\.(sql|native)$/);
    // The fingerprint reads a SummingMergeTree FINAL: one row per key.
    expect(manifest.fingerprint.objects.find((o) => o.object === 'clickhouse:acc_mv')?.rows).toBe(3);

    const report = await verify(backup.backupId);
    expect(report.problems).toEqual([]);
    expect(report.comparisons.find((c) => c.object === 'clickhouse:acc_mv')).toMatchObject({ equal: true });

    const cloneId = newCloneId('chmvc');
    await clone(orgId, backup.backupId, cloneId);
    const cloneDb = dbOf(cloneId);
    expect(await sumsOf(cloneDb)).toEqual(sourceSums);
    expect(await rowsOf(`SELECT id, \`what's this\` AS w FROM ${cloneDb}.\`odd/na.me ü\` ORDER BY id`)).toEqual([
      { id: 1, w: 'x' },
      { id: 2, w: 'y' },
    ]);
    // The clone's view is live and its own: a row into the clone's table reaches the clone's view only.
    await ch(`INSERT INTO ${cloneDb}.scores VALUES ('d', 7)`);
    expect(await sumsOf(cloneDb)).toContainEqual({ k: 'd', total: '7' });
    expect(await sumsOf(db)).toEqual(sourceSums);
  });

  it("a Buffer over the organization's own table leaves the source's row count unchanged through backup, verification and a clone", async () => {
    const orgId = await newOrganization('chbuf');
    const db = dbOf(orgId);
    await ch(`CREATE TABLE ${db}.hits (id UInt64) ENGINE = MergeTree ORDER BY id`);
    await ch(`INSERT INTO ${db}.hits SELECT number FROM system.numbers LIMIT 100`);
    // Thresholds far away: the buffer flushes only when dropped.
    await ch(
      `CREATE TABLE ${db}.hits_buffer AS ${db}.hits ENGINE = Buffer(${db}, hits, 1, 3600, 3600, 1000000, 1000000, 1000000000, 1000000000)`,
    );
    const hits = `SELECT count() AS n FROM ${db}.hits`;

    const backup = await backUp(orgId);
    expect(await countOf(hits)).toBe(100);
    const verification = await verify(backup.backupId).catch((err: unknown) => err);
    expect(await countOf(hits)).toBe(100);
    expect(verification).toMatchObject({ result: 'passed', problems: [] });
    const manifest = await manifestOf(orgId, backup.backupId);
    expect(manifest.artifacts.find((a) => a.object === 'clickhouse-ddl:hits_buffer')).toBeDefined();
    expect(manifest.artifacts.find((a) => a.object === 'clickhouse:hits_buffer')).toBeUndefined();
    expect(manifest.fingerprint.objects.find((o) => o.object === 'clickhouse:hits_buffer')).toBeUndefined();

    const cloneId = newCloneId('chbufc');
    await clone(orgId, backup.backupId, cloneId);
    const cloneDb = dbOf(cloneId);
    expect(await countOf(hits)).toBe(100);
    expect(await countOf(`SELECT count() AS n FROM ${cloneDb}.hits`)).toBe(100);
    const engine = z
      .array(z.object({ engine_full: z.string() }))
      .parse(
        await rowsOf(`SELECT engine_full FROM system.tables WHERE database = '${cloneDb}' AND name = 'hits_buffer'`),
      );
    expect(engine[0]?.engine_full).toMatch(new RegExp(`^Buffer\\(${cloneDb}, hits,`));
  });

  it('a view whose name sorts before its source table verifies and clones with its rows', async () => {
    const orgId = await newOrganization('chview');
    const db = dbOf(orgId);
    await ch(`CREATE TABLE ${db}.zz_source (id UInt64) ENGINE = MergeTree ORDER BY id`);
    await ch(`INSERT INTO ${db}.zz_source SELECT number FROM system.numbers LIMIT 50`);
    await ch(`CREATE VIEW ${db}.aa_even AS SELECT id FROM ${db}.zz_source WHERE id % 2 = 0`);
    // A view over that view, whose name sorts before both.
    await ch(`CREATE VIEW ${db}.a_small_even AS SELECT id FROM ${db}.aa_even WHERE id < 10`);

    const backup = await backUp(orgId);
    const report = await verify(backup.backupId);
    expect(report.problems).toEqual([]);
    const cloneId = newCloneId('chviewc');
    await clone(orgId, backup.backupId, cloneId);
    expect(await countOf(`SELECT count() AS n FROM ${dbOf(cloneId)}.aa_even`)).toBe(25);
    expect(await countOf(`SELECT count() AS n FROM ${dbOf(cloneId)}.a_small_even`)).toBe(5);
  });

  it('a materialized view with TO is created after its target holds its data, so no row is inserted twice', async () => {
    const orgId = await newOrganization('chto');
    const db = dbOf(orgId);
    // Name order: source, target, view; an MV created before the data would copy the source's rows again.
    await ch(`CREATE TABLE ${db}.clicks (id UInt64, page String) ENGINE = MergeTree ORDER BY id`);
    await ch(`CREATE TABLE ${db}.clicks_copy (id UInt64, page String) ENGINE = MergeTree ORDER BY id`);
    await ch(`CREATE MATERIALIZED VIEW ${db}.clicks_mv TO ${db}.clicks_copy AS SELECT id, page FROM ${db}.clicks`);
    await ch(`INSERT INTO ${db}.clicks SELECT number, concat('p', toString(number % 3)) FROM system.numbers LIMIT 30`);
    expect(await countOf(`SELECT count() AS n FROM ${db}.clicks_copy`)).toBe(30);

    const backup = await backUp(orgId);
    const manifest = await manifestOf(orgId, backup.backupId);
    expect(manifest.artifacts.find((a) => a.object === 'clickhouse:clicks_mv')).toBeUndefined();
    const report = await verify(backup.backupId);
    expect(report.problems).toEqual([]);
    const cloneId = newCloneId('chtoc');
    await clone(orgId, backup.backupId, cloneId);
    const cloneDb = dbOf(cloneId);
    expect(await countOf(`SELECT count() AS n FROM ${cloneDb}.clicks_copy`)).toBe(30);
    // The clone's view feeds the clone's target, not the source's.
    await ch(`INSERT INTO ${cloneDb}.clicks VALUES (100, 'new')`);
    expect(await countOf(`SELECT count() AS n FROM ${cloneDb}.clicks_copy`)).toBe(31);
    expect(await countOf(`SELECT count() AS n FROM ${db}.clicks_copy`)).toBe(30);
  });

  it('a Kafka table with a materialized view on it is kept as DDL, and its verification copy and clone never consume: detached as ENGINE = Null', async () => {
    const orgId = await newOrganization('chkafka');
    const db = dbOf(orgId);
    // No broker listens on port 1; ClickHouse 18.16 creates the table and its consumer regardless.
    await ch(
      `CREATE TABLE ${db}.events_queue (id UInt64, page String) ENGINE = Kafka('127.0.0.1:1', 'events', '${db}_group', 'JSONEachRow')`,
    );
    await ch(`CREATE TABLE ${db}.events (id UInt64, page String) ENGINE = MergeTree ORDER BY id`);
    await ch(`CREATE MATERIALIZED VIEW ${db}.events_mv TO ${db}.events AS SELECT id, page FROM ${db}.events_queue`);
    await ch(`INSERT INTO ${db}.events SELECT number, 'p' FROM system.numbers LIMIT 40`);
    const engineOf = async (database: string, table: string) =>
      z
        .array(z.object({ engine_full: z.string() }))
        .parse(
          await rowsOf(`SELECT engine_full FROM system.tables WHERE database = '${database}' AND name = '${table}'`),
        )[0]?.engine_full;

    const backup = await backUp(orgId);
    const manifest = await manifestOf(orgId, backup.backupId);
    expect(manifest.artifacts.find((a) => a.object === 'clickhouse-ddl:events_queue')).toBeDefined();
    expect(manifest.artifacts.find((a) => a.object === 'clickhouse:events_queue')).toBeUndefined();
    expect(await verify(backup.backupId)).toMatchObject({ result: 'passed', problems: [] });

    const cloneId = newCloneId('chkafkac');
    await clone(orgId, backup.backupId, cloneId);
    const cloneDb = dbOf(cloneId);
    expect(await engineOf(cloneDb, 'events_queue')).toBe('Null');
    expect(await countOf(`SELECT count() AS n FROM ${cloneDb}.events`)).toBe(40);
    // The clone's view still works on what reaches its (detached) source; the source keeps its consumer.
    await ch(`INSERT INTO ${cloneDb}.events_queue VALUES (100, 'direct')`);
    expect(await countOf(`SELECT count() AS n FROM ${cloneDb}.events`)).toBe(41);
    expect(await engineOf(db, 'events_queue')).toMatch(/^Kafka\('127\.0\.0\.1:1'/);
  });

  it('a table the backup cannot hold fails it, naming the table, with the PostgreSQL backup beside it stopped and nothing left: an engine of unknown kind, a Set, a view naming the database inside a string', async () => {
    const orgId = await newOrganization('chno');
    const db = dbOf(orgId);
    await ch(`CREATE TABLE ${db}.\`file table\` (id UInt64) ENGINE = File(TSV)`);
    const unknown = await backUpFailing(orgId);
    expect(failureText(unknown)).toMatch(/cannot back up table file table: engine File is not known/);
    await ch(`DROP TABLE ${db}.\`file table\``);
    await ch(`CREATE TABLE ${db}.allowed (id UInt64) ENGINE = Set`);
    expect(failureText(await backUpFailing(orgId))).toMatch(
      /cannot back up table allowed: a Set table owns rows that no query can read back/,
    );
    await ch(`DROP TABLE ${db}.allowed`);
    await ch(`CREATE VIEW ${db}.notes AS SELECT 'copied from ${db} yesterday' AS note`);
    const unmovable = await backUpFailing(orgId);
    expect(failureText(unmovable)).toMatch(
      new RegExp(`cannot back up notes: the statement names database ${db} inside the string`),
    );
  });
});
