import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import { createScratchDatabase, dropScratchDatabase } from '../src/activities/postgres/scratch';
import { dropClickHouseDatabase } from '../src/activities/clickhouse/restore';
import { loadConfig } from '../src/config';
import { JsonLineLogger } from '../src/logger';
import { organizationDataMap, DEFAULT_PLATFORM_MODEL } from '../src/platform/data-map';
import {
  quoteClickHouseIdent,
  quoteClickHouseQualified,
  quotePgIdent,
  quotePgQualified,
} from '../src/platform/quoting';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';
import { createActivityDeps } from '../src/worker';
import {
  BASE_TIMEOUT_MS,
  fingerprintTimeoutMs,
  hashingTimeoutMs,
  HASHING_BYTES_PER_SECOND,
  FINGERPRINT_ROWS_PER_SECOND,
} from '../src/workflows/shared/scaled-timeouts';
import { failureText } from './support/failures';
import { uniqueOrgId } from './support/test-worker';

/** A heartbeat timeout far below what one slow table's hash takes. */
const TINY_HEARTBEAT_TIMEOUT_MS = 1_000;

describe('time limits that scale', () => {
  it('hashing and fingerprinting limits grow with bytes and rows, from the old fixed 10 minutes', () => {
    expect(hashingTimeoutMs(0)).toBe(BASE_TIMEOUT_MS);
    expect(fingerprintTimeoutMs(0)).toBe(BASE_TIMEOUT_MS);
    // 100 GiB of artifacts: 10 min plus 100 GiB at 8 MiB/s (3 h 33 min).
    const bytes = 100 * 1024 ** 3;
    expect(hashingTimeoutMs(bytes)).toBe(BASE_TIMEOUT_MS + (bytes / HASHING_BYTES_PER_SECOND) * 1000);
    expect(hashingTimeoutMs(2 * bytes)).toBeGreaterThan(hashingTimeoutMs(bytes));
    // 100 M rows: 10 min plus 100 M at 20 000 rows/s (1 h 23 min).
    expect(fingerprintTimeoutMs(100e6)).toBe(BASE_TIMEOUT_MS + (100e6 / FINGERPRINT_ROWS_PER_SECOND) * 1000);
    // Never more than a day.
    expect(hashingTimeoutMs(1e15)).toBe(24 * 3600_000);
  });
});

describe('scratch fingerprints under a heartbeat timeout shorter than one table takes', () => {
  let clients: StoreClients;
  let worker: Worker;
  let running: Promise<void>;
  let client: Client;
  let connection: Connection;
  let nativeConnection: NativeConnection;
  const taskQueue = `test-scaled-timeouts-${randomUUID().slice(0, 8)}`;
  const orgId = uniqueOrgId('hb');
  const scratch = `eloquent_scratch_hb_${randomUUID().replace(/-/g, '').slice(0, 12)}`;

  beforeAll(async () => {
    Runtime.install({ logger: new JsonLineLogger('ERROR') });
    const config = loadConfig(process.env);
    clients = createStoreClients(config);
    nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
    connection = await Connection.connect({ address: config.temporal.address });
    client = new Client({ connection, namespace: config.temporal.namespace });
    // The real activities, under a test workflow that sets the timeouts and allows one attempt.
    worker = await Worker.create({
      connection: nativeConnection,
      namespace: config.temporal.namespace,
      taskQueue,
      workflowsPath: require.resolve('./support/workflows/one-activity'),
      activities: createActivities(
        createActivityDeps({ config, clients, model: DEFAULT_PLATFORM_MODEL, temporal: client }),
      ),
    });
    running = worker.run();
  });

  afterAll(async () => {
    await dropScratchDatabase(clients.postgres, scratch).catch(() => undefined);
    await dropClickHouseDatabase(clients.clickhouse, scratch).catch(() => undefined);
    worker?.shutdown();
    await running;
    await connection?.close();
    await nativeConnection?.close();
    await closeStoreClients(clients);
  });

  const runOne = (activity: string, args: unknown[]) =>
    client.workflow.execute('runOneActivity', {
      taskQueue,
      workflowId: `one-activity-${activity}-${Date.now()}`,
      args: [{ activity, args, heartbeatTimeoutMs: TINY_HEARTBEAT_TIMEOUT_MS, startToCloseTimeoutMs: 120_000 }],
    });

  it('PostgreSQL: a table locked for 5 s is fingerprinted, heartbeating while it waits', async () => {
    await createScratchDatabase(clients.postgres, scratch);
    const pool = clients.openPostgresDatabase(scratch, 2);
    const locker = await pool.connect();
    try {
      const table = quotePgQualified(organizationDataMap(orgId).postgres.mainSchema, 'slow_table');
      await pool.query(`CREATE SCHEMA ${quotePgIdent(organizationDataMap(orgId).postgres.mainSchema)}`);
      await pool.query(`CREATE TABLE ${table} AS SELECT g AS id FROM generate_series(1, 1000) g`);
      // The slow table: whoever reads it waits until the lock goes, 5 s from now.
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      const release = new Promise((resolve) => setTimeout(resolve, 5_000)).then(() => locker.query('COMMIT'));
      const started = Date.now();
      const result = await runOne('fingerprintPostgresScratch', [{ orgId, database: scratch }]).catch(
        (err: unknown) => new Error(failureText(err)),
      );
      await release;
      expect(result instanceof Error ? result.message : 'completed').toBe('completed');
      expect(Date.now() - started).toBeGreaterThanOrEqual(4_500);
      expect(result).toEqual(
        expect.arrayContaining([expect.objectContaining({ object: 'schema:org_{org}.slow_table', rows: 1000 })]),
      );
    } finally {
      locker.release();
      await pool.end();
    }
  }, 60_000);

  it('ClickHouse: a table whose hash sleeps about 5 s is fingerprinted, heartbeating while it runs', async () => {
    await clients.clickhouse.command({ query: `CREATE DATABASE ${quoteClickHouseIdent(scratch)}` });
    const table = quoteClickHouseQualified(scratch, 'slow_table');
    // The fingerprint hashes every column, and this one sleeps 1 s per row it computes.
    await clients.clickhouse.command({
      query: `CREATE TABLE ${table} (id UInt64, slow UInt8 ALIAS sleepEachRow(1)) ENGINE = MergeTree ORDER BY id`,
    });
    for (let part = 0; part < 5; part++)
      await clients.clickhouse.command({ query: `INSERT INTO ${table} (id) VALUES (${part}), (${part + 10})` });
    const started = Date.now();
    const result = await runOne('fingerprintClickHouseScratch', [{ orgId, database: scratch }]).catch(
      (err: unknown) => new Error(failureText(err)),
    );
    expect(result instanceof Error ? result.message : 'completed').toBe('completed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_000);
    expect(result).toEqual([expect.objectContaining({ object: 'clickhouse:slow_table', rows: 10 })]);
  }, 60_000);
});
