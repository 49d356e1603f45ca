import { open, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { z } from 'zod';
import { backupManifestSchema, type BackupManifest } from '../src/contracts/backup';
import { DEFAULT_PLATFORM_MODEL, organizationDataMap } from '../src/platform/data-map';
import { fingerprintOrganization } from '../src/platform/fingerprint';
import { quoteClickHouseQualified } from '../src/platform/quoting';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { backupOrganization, verifyBackup } from '../src/workflows';
import { scratchNames } from '../src/workflows/verify-backup';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

async function postgresDatabaseExists(env: TestWorker, name: string): Promise<boolean> {
  return ((await env.clients.postgres.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0;
}

async function clickHouseDatabaseExists(env: TestWorker, name: string): Promise<boolean> {
  const result = await env.clients.clickhouse.query({
    query: `SELECT name FROM system.databases WHERE name = '${name}'`,
    format: 'JSONEachRow',
  });
  return (await result.json<unknown>()).length > 0;
}

async function readManifestOfBackup(env: TestWorker, orgId: string, backupId: string): Promise<BackupManifest> {
  return backupManifestSchema.parse(
    JSON.parse(await readFile(path.join(env.config.backup.directory, orgId, backupId, 'manifest.json'), 'utf8')),
  );
}

describe('verifyBackup', () => {
  let env: TestWorker;
  const orgId = uniqueOrgId('vfy');

  beforeAll(async () => {
    env = await startTestWorker('verify');
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'verify' });
  });
  afterAll(async () => {
    if (env) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      await env.shutdown();
    }
  });

  const readManifestOf = (backupId: string) => readManifestOfBackup(env, orgId, backupId);
  const backUp = () =>
    env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'verify test', verify: false }],
    });

  it('a backup verifies object by object through scratch databases, which are dropped afterwards', async () => {
    const backup = await backUp();
    const handle = await env.client.workflow.start(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-${backup.backupId}`,
      args: [{ backupId: backup.backupId }],
    });
    const report = await handle.result();
    expect(report.result).toBe('passed');
    expect(report.problems).toEqual([]);
    expect(report.comparisons.length).toBeGreaterThan(8);
    expect(report.comparisons.every((c) => c.equal)).toBe(true);
    expect(report.comparisons.some((c) => c.store === 'postgres' && c.object.startsWith('shared:'))).toBe(true);
    expect(report.comparisons.some((c) => c.store === 'clickhouse')).toBe(true);
    const { runId } = await handle.describe();
    const scratch = scratchNames(runId);
    expect(await postgresDatabaseExists(env, scratch.postgres)).toBe(false);
    expect(await clickHouseDatabaseExists(env, scratch.clickhouse)).toBe(false);
    // Recorded beside the manifest.
    const recorded = z
      .object({ result: z.string(), comparisons: z.array(z.unknown()) })
      .parse(
        JSON.parse(
          await readFile(path.join(env.config.backup.directory, orgId, backup.backupId, 'verification.json'), 'utf8'),
        ),
      );
    expect(recorded.result).toBe('passed');
  });

  it('backupOrganization with verify runs verification as a child', async () => {
    const summary = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-verified-${Date.now()}`,
      args: [{ orgId, reason: 'verify option' }],
    });
    expect(summary.verification?.passed).toBe(true);
    const latest = await env.client.workflow.execute(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-latest-${Date.now()}`,
      args: [{ orgId, latest: true }],
    });
    expect(latest.backupId).toBe(summary.backupId);
  });

  it('ClickHouse data arrives gzipped by the server and is stored as it came; an empty table (no gzip from ClickHouse 18) round-trips too', async () => {
    const empty = quoteClickHouseQualified(organizationDataMap(orgId).clickhouse.database, 'empty_notes');
    await env.clients.clickhouse.command({
      query: `CREATE TABLE ${empty} (id UInt64, body String) ENGINE = MergeTree ORDER BY id`,
    });
    try {
      const backup = await backUp();
      const manifest = await readManifestOf(backup.backupId);
      const nodes = manifest.artifacts.find((a) => a.object === 'clickhouse:kg_nodes');
      // Stored as received: the bytes on disk are the gzip stream ClickHouse sent.
      expect(nodes).toMatchObject({ compression: 'gzip', encrypted: false });
      expect(nodes?.bytes).toBe(nodes?.rawBytes);
      const head = Buffer.alloc(2);
      const file = await open(path.join(env.config.backup.directory, orgId, backup.backupId, nodes?.file ?? ''), 'r');
      await file.read(head, 0, 2, 0).finally(() => file.close());
      expect(head).toEqual(Buffer.from([0x1f, 0x8b]));
      expect(manifest.artifacts.find((a) => a.object === 'clickhouse:empty_notes')).toMatchObject({
        rows: 0,
        compression: 'gzip',
      });
      const report = await env.client.workflow.execute(verifyBackup, {
        taskQueue: env.taskQueue,
        workflowId: `verify-gzip-${Date.now()}`,
        args: [{ backupId: backup.backupId, orgId }],
      });
      expect(report.result).toBe('passed');
      expect(report.comparisons.find((c) => c.object === 'clickhouse:empty_notes')).toMatchObject({ equal: true });
    } finally {
      await env.clients.clickhouse.command({ query: `DROP TABLE IF EXISTS ${empty}` });
    }
  });

  it('a ClickHouse user that may not change settings (readonly=1) still backs up: the worker gzips instead', async () => {
    // Debian's ClickHouse ships a user "readonly" with the readonly=1 profile.
    const readonlyWorker = await startTestWorker('verify-ro', { CLICKHOUSE_USER: 'readonly' });
    try {
      const backup = await readonlyWorker.client.workflow.execute(backupOrganization, {
        taskQueue: readonlyWorker.taskQueue,
        workflowId: `backup-${orgId}-readonly-${Date.now()}`,
        args: [{ orgId, reason: 'readonly ClickHouse user', verify: false }],
      });
      const nodes = (await readManifestOf(backup.backupId)).artifacts.find((a) => a.object === 'clickhouse:kg_nodes');
      // Compressed by the worker: rawBytes counts the Native bytes, several times the stored gzip.
      expect(nodes?.compression).toBe('gzip');
      expect(nodes?.rawBytes).toBeGreaterThan(2 * (nodes?.bytes ?? 0));
      const report = await env.client.workflow.execute(verifyBackup, {
        taskQueue: env.taskQueue,
        workflowId: `verify-readonly-${Date.now()}`,
        args: [{ backupId: backup.backupId, orgId }],
      });
      expect(report.result).toBe('passed');
    } finally {
      await readonlyWorker.shutdown();
    }
  });

  it('a manifest of the column-hash release (rows as stored, no FINAL) still verifies under its own row hash', async () => {
    const backup = await backUp();
    const manifestFile = path.join(env.config.backup.directory, orgId, backup.backupId, 'manifest.json');
    const manifest = await readManifestOf(backup.backupId);
    const older = await fingerprintOrganization(env.clients, orgId, ['clickhouse'], DEFAULT_PLATFORM_MODEL, {
      clickhouseRowHash: 'column-hash',
    });
    const objects = [...manifest.fingerprint.objects.filter((o) => o.store !== 'clickhouse'), ...older.objects];
    await writeFile(
      manifestFile,
      JSON.stringify(
        { ...manifest, fingerprint: { ...manifest.fingerprint, clickhouseRowHash: 'column-hash', objects } },
        null,
        2,
      ),
    );
    const report = await env.client.workflow.execute(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-column-hash-${Date.now()}`,
      args: [{ backupId: backup.backupId, orgId }],
    });
    expect(report.result).toBe('passed');
  });

  it('a manifest from before row hashes were recorded (md5-text, text-tuple) still verifies: the manifest names the row hashes', async () => {
    const backup = await backUp();
    const manifestFile = path.join(env.config.backup.directory, orgId, backup.backupId, 'manifest.json');
    const manifest = await readManifestOf(backup.backupId);
    expect(manifest.fingerprint).toMatchObject({
      postgresRowHash: 'portable-record-hash',
      clickhouseRowHash: 'final-column-hash',
    });
    // Nothing writes to the organization meanwhile: its legacy fingerprint is what an older release recorded.
    const legacy = await fingerprintOrganization(
      env.clients,
      orgId,
      ['postgres', 'clickhouse'],
      DEFAULT_PLATFORM_MODEL,
      { postgresRowHash: 'md5-text', clickhouseRowHash: 'text-tuple' },
    );
    const { postgresRowHash: _pg, clickhouseRowHash: _ch, ...fingerprintWithoutRowHashes } = manifest.fingerprint;
    const rewritten = { ...manifest, fingerprint: { ...fingerprintWithoutRowHashes, objects: legacy.objects } };
    await writeFile(manifestFile, JSON.stringify(rewritten, null, 2));
    const report = await env.client.workflow.execute(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-legacy-${Date.now()}`,
      args: [{ backupId: backup.backupId, orgId }],
    });
    expect(report.result).toBe('passed');
    expect(report.comparisons.filter((c) => c.store === 'postgres').length).toBeGreaterThan(5);
    expect(report.comparisons.filter((c) => c.store === 'clickhouse').length).toBeGreaterThan(3);

    // The same legacy hashes labelled with today's row hashes no longer match: the fields decide.
    await writeFile(
      manifestFile,
      JSON.stringify(
        {
          ...rewritten,
          fingerprint: {
            ...rewritten.fingerprint,
            postgresRowHash: 'portable-record-hash',
            clickhouseRowHash: 'final-column-hash',
          },
        },
        null,
        2,
      ),
    );
    const failure = await rejectionOf(
      env.client.workflow.execute(verifyBackup, {
        taskQueue: env.taskQueue,
        workflowId: `verify-mislabelled-${Date.now()}`,
        args: [{ backupId: backup.backupId, orgId }],
      }),
    );
    expect(failureText(failure)).toMatch(/schema:org_\{org\}\.entity_definitions/);
    expect(failureText(failure)).toMatch(/clickhouse:kg_nodes/);
  });

  it('one flipped byte in one artifact fails verification naming that artifact, with no scratch left', async () => {
    const backup = await backUp();
    const target = path.join(env.config.backup.directory, orgId, backup.backupId, 'clickhouse', 'kg_nodes.native');
    const file = await open(target, 'r+');
    try {
      const byte = Buffer.alloc(1);
      await file.read(byte, 0, 1, 100);
      byte[0] = (byte[0] ?? 0) ^ 0xff;
      await file.write(byte, 0, 1, 100);
    } finally {
      await file.close();
    }
    const handle = await env.client.workflow.start(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-flipped-${Date.now()}`,
      args: [{ backupId: backup.backupId, orgId }],
    });
    const failure = await rejectionOf(handle.result());
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(failureText(failure)).toMatch(
      /clickhouse\/kg_nodes\.native: SHA-256 [0-9a-f]{64}, manifest says [0-9a-f]{64}/,
    );
    const { runId } = await handle.describe();
    expect(await postgresDatabaseExists(env, scratchNames(runId).postgres)).toBe(false);
    expect(await clickHouseDatabaseExists(env, scratchNames(runId).clickhouse)).toBe(false);
  });

  it('a verification cancelled midway leaves no scratch database behind', async () => {
    const backup = await backUp();
    const handle = await env.client.workflow.start(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-cancel-${Date.now()}`,
      args: [{ backupId: backup.backupId, orgId }],
    });
    const { runId } = await handle.describe();
    const scratch = scratchNames(runId);
    // Wait until the restore into scratch has begun, then cancel.
    const deadline = Date.now() + 30_000;
    while (!(await postgresDatabaseExists(env, scratch.postgres)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 25));
    expect(await postgresDatabaseExists(env, scratch.postgres)).toBe(true);
    await handle.cancel();
    await rejectionOf(handle.result());
    expect(await postgresDatabaseExists(env, scratch.postgres)).toBe(false);
    expect(await clickHouseDatabaseExists(env, scratch.clickhouse)).toBe(false);
  });
});
