import { startOrganizationDeletion } from '../src/client/deletion';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { describeOrganization } from '../src/platform/describe';
import { removeDeletionArtifacts, terminateIfRunning, waitForDeletionStatus } from './support/deletion';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * `storeDownAfter` is how long a store may FAIL before the run parks, not how long a healthy call
 * may take: the residue count, the purge or the seal of a big organization, or one waiting for a
 * lock a migration holds, outlasts a short storeDownAfter while every server answers. Runs started
 * before `deletion-retries-failures-in-workflow` cut such a call at storeDownAfter and parked.
 */
describe('deleteOrganization on a slow but healthy store', () => {
  let env: TestWorker;
  const orgId = uniqueOrgId('dlsl');
  const workflows: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('deletion-slow');
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'slow' });
  });
  afterAll(async () => {
    if (!env) return;
    for (const id of workflows) await terminateIfRunning(env.client, id);
    await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
    await removeDeletionArtifacts(env.clients, env.config.backup.directory, orgId);
    await env.shutdown();
  });

  it('waits out a call longer than storeDownAfter (the seal blocked on a row lock) without parking', async () => {
    const handle = await startOrganizationDeletion(
      env.client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 'slow store test',
        gracePeriod: '3s',
        backupRetention: '1h',
        storeDownAfter: '2s',
        parkedRetryInterval: '1h',
      },
      { taskQueue: env.taskQueue },
    );
    workflows.push(handle.workflowId);
    await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.step === 'grace-period');

    // Another session holds the organization's row, as a long transaction of the platform would:
    // the seal's SELECT … FOR UPDATE waits for it, well past storeDownAfter.
    const holder = await env.clients.postgres.connect();
    const heldMs = 10_000;
    let released = false;
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM public.organizations WHERE id = $1 FOR UPDATE', [orgId]);
      const heldAt = Date.now();
      await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.step === 'sealing', 30_000);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, heldMs - (Date.now() - heldAt))));
      const during = await handle.query<{ parked?: unknown; step: string }>('deletionStatus');
      expect(during).toMatchObject({ step: 'sealing' });
      expect(during.parked).toBeUndefined();
      await holder.query('COMMIT');
      released = true;
    } finally {
      if (!released) await holder.query('ROLLBACK').catch(() => undefined);
      holder.release();
    }

    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${result.outcome}`);
    const status = await handle.query<{ notes: string[] }>('deletionStatus');
    expect(status.notes.filter((n) => /park|retried|retryNow/i.test(n))).toEqual([]);
    // The seal really waited longer than storeDownAfter.
    const sealedAfterMs =
      new Date(result.certificate.lastState?.sealedAt ?? 0).getTime() -
      new Date(result.certificate.pointOfNoReturnAt).getTime();
    expect(sealedAfterMs).toBeGreaterThan(2_000);
    expect(result.certificate.residueCheck?.clean).toBe(true);
    expect((await describeOrganization(env.clients, orgId)).exists).toBe(false);
  }, 180_000);
});
