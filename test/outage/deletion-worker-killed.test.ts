import { randomUUID } from 'node:crypto';
import { startOrganizationDeletion } from '../../src/client/deletion';
import type { DeleteOrganizationResult } from '../../src/contracts/deletion';
import { describeOrganization } from '../../src/platform/describe';
import { clickHouseDatabaseExists } from '../../src/platform/discovery';
import { dropSeededOrganization, seedOrganization } from '../../src/platform/seed-organization';
import { removeDeletionArtifacts, terminateIfRunning, waitForDeletionStatus } from '../support/deletion';
import { startTestWorker, uniqueOrgId, type TestWorker } from '../support/test-worker';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

describe('deleteOrganization when its worker dies', () => {
  let env: TestWorker;
  const orgId = uniqueOrgId('dlkill');
  const workflows: string[] = [];
  const processes: WorkerProcess[] = [];

  beforeAll(async () => {
    // The in-process worker only lends its clients; the deletion runs on the worker process's queue.
    env = await startTestWorker('deletion-kill-helper');
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'kill' });
  });
  afterAll(async () => {
    for (const p of processes) await p.stop().catch(() => undefined);
    if (!env) return;
    for (const id of workflows) await terminateIfRunning(env.client, id);
    await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
    await removeDeletionArtifacts(env.clients, env.config.backup.directory, orgId);
    await env.shutdown();
  });

  it('a worker killed (SIGKILL) after the ClickHouse purge is replaced and the deletion completes with a correct certificate', async () => {
    const taskQueue = `test-deletion-kill-${randomUUID().slice(0, 8)}`;
    const first = await startWorkerProcess(taskQueue);
    processes.push(first);
    const handle = await startOrganizationDeletion(
      env.client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 'crash test',
        gracePeriod: '0s',
        backupRetention: '1h',
      },
      { taskQueue },
    );
    workflows.push(handle.workflowId);
    const atKill = await waitForDeletionStatus(
      env.client,
      handle.workflowId,
      (s) => s.purge.clickhouse.state === 'done',
      120_000,
    );
    await first.kill();
    expect(atKill.purge.clickhouse.removed?.rows).toBeGreaterThan(0);
    expect(await clickHouseDatabaseExists(env.clients.clickhouse, `org_${orgId}`)).toBe(false);

    const second = await startWorkerProcess(taskQueue);
    processes.push(second);
    const result: DeleteOrganizationResult = await handle.result();
    if (result.outcome !== 'deleted') throw new Error('expected a deletion');
    workflows.push(result.certificate.retention.shredWorkflowId);
    const c = result.certificate;
    expect(c.status).toBe('completed');
    expect(c.steps.map((s) => s.step)).toEqual([
      'queue',
      'redis',
      'clickhouse',
      'postgres-schemas',
      'postgres-shared-rows',
    ]);
    // Counts of steps done before the crash survive it (they live in the workflow's history).
    expect(c.removed.clickhouse.rows).toBe(atKill.purge.clickhouse.removed?.rows);
    expect(c.removed.queue.messages).toBeGreaterThan(0);
    expect(c.removed.postgres['public.organizations']).toBe(1);
    expect(c.residueCheck).toMatchObject({ clean: true });
    expect((await describeOrganization(env.clients, orgId)).exists).toBe(false);
    const row = await env.clients.postgres.query<{ status: string }>(
      'SELECT status FROM eloquent_ops.deletion_certificates WHERE run_id = $1',
      [c.runId],
    );
    expect(row.rows[0]?.status).toBe('completed');
  }, 240_000);
});
