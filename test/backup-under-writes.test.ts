import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { z } from 'zod';
import { backupManifestSchema, type BackupManifest } from '../src/contracts/backup';
import { organizationDataMap } from '../src/platform/data-map';
import { compareFingerprints, fingerprintOrganization } from '../src/platform/fingerprint';
import { quoteClickHouseQualified, quotePgQualified } from '../src/platform/quoting';
import { seedOrganization } from '../src/platform/seed-organization';
import { backupOrganization, restoreOrganization } from '../src/workflows';
import { dropTestOrganizations } from './support/organizations';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/** Rows per second the writer adds to each store while the backup runs (the "about 20"). */
const ROWS_PER_SECOND = 20;
const countRow = z.object({ rows: z.union([z.string(), z.number()]) });

async function readManifest(env: TestWorker, orgId: string, backupId: string): Promise<BackupManifest> {
  const file = path.join(env.config.backup.directory, orgId, backupId, 'manifest.json');
  return backupManifestSchema.parse(JSON.parse(await readFile(file, 'utf8')));
}

async function postgresRows(env: TestWorker, orgId: string): Promise<number> {
  const schema = organizationDataMap(orgId).postgres.mainSchema;
  const result = await env.clients.postgres.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM ${quotePgQualified(schema, 'a_live_events')}`,
  );
  return Number(result.rows[0]?.n);
}

async function clickHouseRows(env: TestWorker, orgId: string): Promise<number> {
  const database = organizationDataMap(orgId).clickhouse.database;
  const result = await env.clients.clickhouse.query({
    query: `SELECT toString(count()) AS rows FROM ${quoteClickHouseQualified(database, 'a_live_events')}`,
    format: 'JSONEachRow',
  });
  return Number(z.array(countRow).parse(await result.json<unknown>())[0]?.rows);
}

/**
 * Inserts into the organization's PostgreSQL table (identity column) and ClickHouse table (a new
 * part, often a new partition, every 200 ms) until stopped, as a busy organization does.
 */
function startWriter(env: TestWorker, orgId: string): { stop(): Promise<number> } {
  const map = organizationDataMap(orgId);
  const pgTable = quotePgQualified(map.postgres.mainSchema, 'a_live_events');
  const perTick = ROWS_PER_SECOND / 5;
  let running = true;
  let written = 0;
  let failure: unknown;
  const loop = (async () => {
    let next = 0;
    while (running) {
      const ids = Array.from({ length: perTick }, () => next++);
      const started = Date.now();
      await env.clients.postgres.query(
        `INSERT INTO ${pgTable} (note) SELECT 'event ' || n FROM unnest($1::int[]) AS n`,
        [ids],
      );
      await env.clients.clickhouse.insert({
        table: `${map.clickhouse.database}.a_live_events`,
        values: ids.map((id) => ({ id, note: `event ${id}` })),
        format: 'JSONEachRow',
      });
      written += perTick;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 200 - (Date.now() - started))));
    }
  })().catch((err: unknown) => (failure = err));
  return {
    async stop() {
      running = false;
      await loop;
      if (failure !== undefined) throw failure;
      return written;
    },
  };
}

describe('a backup of an organization that is written to during the whole run', () => {
  let env: TestWorker;
  const source = uniqueOrgId('live');
  const clone = uniqueOrgId('livecl');

  beforeAll(async () => {
    env = await startTestWorker('backup-under-writes');
    await seedOrganization(env.clients, source, { scale: 'small', seed: 'live' });
    const map = organizationDataMap(source);
    await env.clients.postgres.query(
      `CREATE TABLE ${quotePgQualified(map.postgres.mainSchema, 'a_live_events')}
         (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text NOT NULL, at timestamptz NOT NULL DEFAULT now())`,
    );
    // Named to sort first, so it is exported first and the rest of the backup's run lies between its
    // export and the end. Ten ids per partition: the writer opens a new partition every half second.
    await env.clients.clickhouse.command({
      query: `CREATE TABLE ${quoteClickHouseQualified(map.clickhouse.database, 'a_live_events')}
                (id UInt64, note String) ENGINE = MergeTree PARTITION BY intDiv(id, 10) ORDER BY id`,
    });
  });

  afterAll(async () => {
    if (env) await dropTestOrganizations(env, [source, clone]);
    await env?.shutdown();
  });

  it('verifies, records the moment of each store and table, and restores to the backup, not to the live source', async () => {
    const writer = startWriter(env, source);
    let manifest: BackupManifest;
    let written: number;
    const started = Date.now();
    try {
      const summary = await env.client.workflow.execute(backupOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `backup-${source}-${Date.now()}`,
        args: [{ orgId: source, reason: 'under writes', verify: true }],
      });
      expect(summary.verification?.passed).toBe(true);
      manifest = await readManifest(env, source, summary.backupId);
    } finally {
      written = await writer.stop();
    }
    const seconds = (Date.now() - started) / 1000;
    // The writer really wrote throughout: about 20 rows/s into each store.
    expect(written).toBeGreaterThanOrEqual(Math.floor(seconds * ROWS_PER_SECOND * 0.5));

    // Each table's rows and fingerprint are the same rows: the data artifact's row count is the fingerprint's.
    const chArtifact = manifest.artifacts.find((a) => a.object === 'clickhouse:a_live_events');
    const chPrint = manifest.fingerprint.objects.find((o) => o.object === 'clickhouse:a_live_events');
    expect(chArtifact?.rows).toBe(chPrint?.rows);
    const pgPrint = manifest.fingerprint.objects.find((o) => o.object === 'schema:org_{org}.a_live_events');
    expect(pgPrint).toBeDefined();
    // The backup took a moment of a table being written, not its end state.
    expect(pgPrint?.rows ?? 0).toBeLessThan(written);
    expect(chPrint?.rows ?? 0).toBeLessThan(written);

    // The manifest says which moment each store and each ClickHouse table represents.
    expect(manifest.pointsInTime).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ store: 'postgres', object: '*', how: 'snapshot' }),
        expect.objectContaining({ store: 'clickhouse', object: 'clickhouse:a_live_events', how: 'attached-parts' }),
      ]),
    );
    const dataObjects = manifest.fingerprint.objects.filter((o) => o.store === 'clickhouse').map((o) => o.object);
    const moments = (manifest.pointsInTime ?? []).filter((p) => p.store === 'clickhouse').map((p) => p.object);
    expect(moments.sort()).toEqual(dataObjects.sort());

    // The restore (a clone) equals the backup's fingerprint, and the live source has moved on.
    await env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${clone}-${Date.now()}`,
      args: [{ backupId: manifest.backupId, orgId: source, targetOrgId: clone, mode: 'into-empty' }],
    });
    const restored = await fingerprintOrganization(env.clients, clone, ['postgres', 'clickhouse'], undefined, {
      postgresRowHash: manifest.fingerprint.postgresRowHash,
      clickhouseRowHash: manifest.fingerprint.clickhouseRowHash,
    });
    const expected = { orgId: source, takenAt: manifest.fingerprint.takenAt, objects: manifest.fingerprint.objects };
    expect(compareFingerprints(expected, restored).differences).toEqual([]);
    // Counted by plain SQL, not by the fingerprint: the clone holds the backup's rows, the source more.
    expect(await postgresRows(env, clone)).toBe(pgPrint?.rows);
    expect(await clickHouseRows(env, clone)).toBe(chPrint?.rows);
    expect(await postgresRows(env, source)).toBe(written);
    expect(await clickHouseRows(env, source)).toBe(written);
  }, 300_000);
});
