import type { DeletionStatus } from '../src/contracts/deletion';
import { decideParkedDeletion, startOrganizationDeletion } from '../src/client/deletion';
import { loadConfig } from '../src/config';
import { organizationDataMap } from '../src/platform/data-map';
import { describeOrganization } from '../src/platform/describe';
import { listOrgSchemas } from '../src/platform/discovery';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';
import { removeDeletionArtifacts, terminateIfRunning, waitForDeletionStatus } from './support/deletion';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';
import { readOnlyCacheUser, type RedisTestUser } from './support/redis-users';

/**
 * A purge step that keeps failing without stopping any shared server: the worker talks to Redis as
 * an ACL user that may only read cache keys, so the Redis purge fails every round while the backup
 * (which only counts Redis keys) and the session revocation succeed.
 */
describe('deleteOrganization parked at a failing step', () => {
  let admin: StoreClients;
  let env: TestWorker;
  let acl: RedisTestUser;
  const orgId = uniqueOrgId('dlpk');
  const workflows: string[] = [];

  beforeAll(async () => {
    admin = createStoreClients(loadConfig());
    acl = await readOnlyCacheUser(admin, 'eloquent_no_unlink');
    env = await startTestWorker('deletion-parked', acl.env);
    await seedOrganization(admin, orgId, { scale: 'small', seed: 'parked' });
  });
  afterAll(async () => {
    if (env) {
      for (const id of workflows) await terminateIfRunning(env.client, id);
      await env.shutdown();
    }
    if (admin) {
      await dropSeededOrganization(admin, orgId).catch(() => undefined);
      await removeDeletionArtifacts(admin, loadConfig().backup.directory, orgId);
      await acl?.cleanup();
      await closeStoreClients(admin);
    }
  });

  it('retries on its own every parkedRetryInterval, and abandon ends the run with an abandoned certificate naming what was not purged', async () => {
    const handle = await startOrganizationDeletion(
      env.client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 'parked test',
        gracePeriod: '1s',
        backupRetention: '1h',
        storeDownAfter: '2s',
        parkedRetryInterval: '2s',
      },
      { taskQueue: env.taskQueue },
    );
    workflows.push(handle.workflowId);

    const parked = await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.parked !== undefined, 120_000);
    expect(parked.parked).toMatchObject({ step: 'redis', signals: ['retryNow', 'abandon'] });
    expect(parked.parked?.reason).toMatch(/NOPERM|permission/i);
    expect(parked.purge.queue.state).toBe('done');
    expect(parked.purge.redis.state).toBe('parked');

    // No operator: the parked step is retried after parkedRetryInterval, fails again and parks again.
    const retried = await waitForDeletionStatus(
      env.client,
      handle.workflowId,
      (s) => s.parked !== undefined && s.notes.some((n) => n === 'retried redis automatically after being parked'),
      60_000,
    );
    expect(retried.purge.redis.rounds).toBeGreaterThanOrEqual(2);

    await decideParkedDeletion(env.client, orgId, 'abandon', {
      by: 'jest',
      reason: 'Redis ACL is wrong; fixing by hand',
    });
    const failure = await rejectionOf(handle.result());
    expect(failureText(failure)).toMatch(
      /abandoned at redis by jest: Redis ACL is wrong; fixing by hand; after the point of no return; not purged: redis, clickhouse, postgres-schemas, postgres-shared-rows/,
    );

    const status = await handle.query<DeletionStatus>('deletionStatus');
    expect(status.step).toBe('abandoned');
    expect(status.certificate).toMatchObject({
      status: 'abandoned',
      abandoned: { by: 'jest', step: 'redis', reason: 'Redis ACL is wrong; fixing by hand' },
    });
    // The abandoned certificate reached the deletion log.
    const logged = await admin.postgres.query<{ status: string }>(
      'SELECT status FROM eloquent_ops.deletion_certificates WHERE org_id = $1',
      [orgId],
    );
    expect(logged.rows.map((r) => r.status)).toEqual(['abandoned']);
    // Nothing after the abandoned step ran: PostgreSQL and ClickHouse still hold the organization.
    expect(await listOrgSchemas(admin.postgres, organizationDataMap(orgId))).toHaveLength(2);
    const described = await describeOrganization(admin, orgId);
    expect(described.clickhouse.tables.reduce((n, t) => n + t.rows, 0)).toBeGreaterThan(0);
  }, 240_000);
});
