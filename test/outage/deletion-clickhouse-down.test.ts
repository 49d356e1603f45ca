import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { decideParkedDeletion, startOrganizationDeletion } from '../../src/client/deletion';
import { organizationDataMap } from '../../src/platform/data-map';
import { describeOrganization } from '../../src/platform/describe';
import { listOrgSchemas } from '../../src/platform/discovery';
import { compareFingerprints, fingerprintOrganization } from '../../src/platform/fingerprint';
import { dropSeededOrganization, seedOrganization } from '../../src/platform/seed-organization';
import { removeDeletionArtifacts, terminateIfRunning, waitForDeletionStatus } from '../support/deletion';
import { REPO_ROOT } from '../support/paths';
import { startTestWorker, uniqueOrgId, type TestWorker } from '../support/test-worker';

const run = promisify(execFile);
const stack = (...args: string[]) =>
  run('bash', [path.join(REPO_ROOT, 'scripts', 'stack.sh'), ...args], { cwd: REPO_ROOT });

// Stops the shared ClickHouse server: run alone (`npx jest test/outage --runInBand`).
describe('deleteOrganization with ClickHouse down past the point of no return', () => {
  let env: TestWorker;
  const orgId = uniqueOrgId('dlch');
  const neighbour = `${orgId}x`;
  const workflows: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('deletion-ch-down');
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'ch-down' });
    await seedOrganization(env.clients, neighbour, { scale: 'small', seed: 'ch-down-neighbour' });
  });
  afterAll(async () => {
    await stack('up', 'clickhouse');
    if (!env) return;
    for (const id of workflows) await terminateIfRunning(env.client, id);
    for (const id of [orgId, neighbour]) {
      await dropSeededOrganization(env.clients, id).catch(() => undefined);
      await removeDeletionArtifacts(env.clients, env.config.backup.directory, id);
    }
    await env.shutdown();
  });

  // Past the point of no return the run first compares the organization with its pre-deletion
  // backup, which reads ClickHouse: with ClickHouse down it parks there, before anything is purged.
  // (A purge step parking with the earlier stores already purged is test/deletion-parked.test.ts.)
  it('parks at sealing before anything is purged, with the reason visible, and completes once ClickHouse is back and an operator says retryNow', async () => {
    const neighbourBefore = await fingerprintOrganization(env.clients, neighbour);
    const handle = await startOrganizationDeletion(
      env.client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 'outage test',
        gracePeriod: '15s',
        backupRetention: '1h',
        storeDownAfter: '3s',
        parkedRetryInterval: '1h',
      },
      { taskQueue: env.taskQueue },
    );
    workflows.push(handle.workflowId);
    await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.step === 'grace-period');
    await stack('down', 'clickhouse');

    const parked = await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.parked !== undefined, 90_000);
    expect(parked.step).toBe('sealing');
    expect(parked.parked).toMatchObject({ step: 'sealing', signals: ['retryNow', 'abandon'] });
    expect(parked.parked?.reason).toMatch(/ECONNREFUSED|connect|socket|closed/i);
    for (const step of ['queue', 'redis', 'clickhouse', 'postgres-schemas', 'postgres-shared-rows'] as const) {
      expect(parked.purge[step].state).toBe('pending');
    }
    // Visible without a query, in the run's memo (the UI shows it).
    const description = await handle.describe();
    expect(String(description.memo?.deletion)).toMatch(/^PARKED at sealing/);
    // Nothing was purged: the organization's rows and schemas wait for the comparison.
    const row = await env.clients.postgres.query<{ status: string }>(
      'SELECT status FROM public.organizations WHERE id = $1',
      [orgId],
    );
    // Sealed (API keys revoked, status `deleted` so the fan-outs skip it): the seal is PostgreSQL's;
    // the comparison after it is what waits for ClickHouse.
    expect(row.rows[0]?.status).toBe('deleted');
    expect(await listOrgSchemas(env.clients.postgres, organizationDataMap(orgId))).toHaveLength(2);

    await stack('up', 'clickhouse');
    await decideParkedDeletion(env.client, orgId, 'retryNow', { by: 'jest', reason: 'ClickHouse is back' });
    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error('expected a deletion');
    workflows.push(result.certificate.retention.shredWorkflowId);
    const clickhouseStep = result.certificate.steps.find((s) => s.step === 'clickhouse');
    expect(clickhouseStep?.rounds).toBe(1);
    expect(clickhouseStep?.removed.rows).toBeGreaterThan(0);
    expect(result.certificate.residueCheck?.clean).toBe(true);
    // Nothing was written meanwhile: the comparison, once it could run, found no change to back up.
    expect(result.certificate.lastState?.changed).toBe(false);
    expect((await describeOrganization(env.clients, orgId)).exists).toBe(false);
    const status = await handle.query<{ notes: string[] }>('deletionStatus');
    expect(status.notes.join('\n')).toMatch(/retryNow at sealing by jest: ClickHouse is back/);
    expect(
      compareFingerprints(neighbourBefore, await fingerprintOrganization(env.clients, neighbour)).differences,
    ).toEqual([]);
  }, 240_000);
});
