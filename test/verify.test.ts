import { open, readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { z } from 'zod';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { backupOrganization, verifyBackup } from '../src/workflows';
import { scratchNames } from '../src/workflows/verify-backup';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

async function postgresDatabaseExists(env: TestWorker, name: string): Promise<boolean> {
  return ((await env.clients.postgres.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount ?? 0) > 0;
}

async function clickHouseDatabaseExists(env: TestWorker, name: string): Promise<boolean> {
  const result = await env.clients.clickhouse.query({ query: `SELECT name FROM system.databases WHERE name = '${name}'`, format: 'JSONEachRow' });
  return (await result.json<unknown>()).length > 0;
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

  const backUp = () =>
    env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'verify test', verify: false }],
    });

  it('a backup verifies object by object through scratch databases, which are dropped afterwards', async () => {
    const backup = await backUp();
    const handle = await env.client.workflow.start(verifyBackup, { taskQueue: env.taskQueue, workflowId: `verify-${backup.backupId}`, args: [{ backupId: backup.backupId }] });
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
      .parse(JSON.parse(await readFile(path.join(env.config.backup.directory, orgId, backup.backupId, 'verification.json'), 'utf8')));
    expect(recorded.result).toBe('passed');
  });

  it('backupOrganization with verify runs verification as a child', async () => {
    const summary = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-verified-${Date.now()}`,
      args: [{ orgId, reason: 'verify option' }],
    });
    expect(summary.verification?.passed).toBe(true);
    const latest = await env.client.workflow.execute(verifyBackup, { taskQueue: env.taskQueue, workflowId: `verify-latest-${Date.now()}`, args: [{ orgId, latest: true }] });
    expect(latest.backupId).toBe(summary.backupId);
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
    const handle = await env.client.workflow.start(verifyBackup, { taskQueue: env.taskQueue, workflowId: `verify-flipped-${Date.now()}`, args: [{ backupId: backup.backupId, orgId }] });
    const failure = await rejectionOf(handle.result());
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(failureText(failure)).toMatch(/clickhouse\/kg_nodes\.native: SHA-256 [0-9a-f]{64}, manifest says [0-9a-f]{64}/);
    const { runId } = await handle.describe();
    expect(await postgresDatabaseExists(env, scratchNames(runId).postgres)).toBe(false);
    expect(await clickHouseDatabaseExists(env, scratchNames(runId).clickhouse)).toBe(false);
  });

  it('a verification cancelled midway leaves no scratch database behind', async () => {
    const backup = await backUp();
    const handle = await env.client.workflow.start(verifyBackup, { taskQueue: env.taskQueue, workflowId: `verify-cancel-${Date.now()}`, args: [{ backupId: backup.backupId, orgId }] });
    const { runId } = await handle.describe();
    const scratch = scratchNames(runId);
    // Wait until the restore into scratch has begun, then cancel.
    const deadline = Date.now() + 30_000;
    while (!(await postgresDatabaseExists(env, scratch.postgres)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(await postgresDatabaseExists(env, scratch.postgres)).toBe(true);
    await handle.cancel();
    await rejectionOf(handle.result());
    expect(await postgresDatabaseExists(env, scratch.postgres)).toBe(false);
    expect(await clickHouseDatabaseExists(env, scratch.clickhouse)).toBe(false);
  });
});
