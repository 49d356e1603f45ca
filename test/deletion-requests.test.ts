import { DeletionRequestRefusedError, requestOfDeletion, startOrganizationDeletion } from '../src/client/deletion';
import { runCli } from '../src/cli/main';
import { loadConfig } from '../src/config';
import type { DeletionStatus } from '../src/contracts/deletion';
import { readOrganizationStatus } from '../src/activities/postgres/organization-row';
import { organizationDataMap } from '../src/platform/data-map';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';
import { captureIo } from './support/cli-io';
import { removeDeletionArtifacts, terminateIfRunning, waitForDeletionStatus } from './support/deletion';
import { failureText, rejectionOf } from './support/failures';
import { readOnlyCacheUser, type RedisTestUser } from './support/redis-users';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * `cancel-delete`, `retry-delete` and `abandon-delete` tell the truth: a request the deletion would
 * only note and ignore (a cancel after the point of no return, a retry of a run that is not parked)
 * is refused with the run's reason and exit code 4, from the SDK and the CLI. The worker talks to
 * Redis as a user that may not delete cache keys, so a deletion past its point of no return parks
 * at the Redis purge and stays there until an operator decides.
 */
describe('operator requests to a running deletion', () => {
  let admin: StoreClients;
  let env: TestWorker;
  let acl: RedisTestUser;
  const inGrace = uniqueOrgId('dlrg');
  const parked = uniqueOrgId('dlrp');
  const workflows: string[] = [];
  const cli = async (...args: string[]) => {
    const io = captureIo(process.env);
    const code = await runCli([...args, '--task-queue', env.taskQueue, '--by', 'jest'], io);
    return { code, out: io.out, err: io.err };
  };

  beforeAll(async () => {
    admin = createStoreClients(loadConfig());
    acl = await readOnlyCacheUser(admin, 'eloquent_requests');
    env = await startTestWorker('deletion-requests', acl.env);
    await seedOrganization(admin, inGrace, { scale: 'small', seed: 'requests-grace' });
    await seedOrganization(admin, parked, { scale: 'small', seed: 'requests-parked' });
  });
  afterAll(async () => {
    if (env) {
      for (const id of workflows) await terminateIfRunning(env.client, id);
      await env.shutdown();
    }
    if (admin) {
      for (const orgId of [inGrace, parked]) {
        await dropSeededOrganization(admin, orgId).catch(() => undefined);
        await removeDeletionArtifacts(admin, loadConfig().backup.directory, orgId);
      }
      await acl?.cleanup();
      await closeStoreClients(admin);
    }
  });

  const start = (orgId: string, gracePeriod: string) =>
    startOrganizationDeletion(
      env.client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 'operator requests test',
        gracePeriod,
        skipBackup: true,
        backupRetention: '1h',
        storeDownAfter: '2s',
        parkedRetryInterval: '1h',
      },
      { taskQueue: env.taskQueue },
    );

  it('during the grace period retry-delete and abandon-delete are refused (not parked) and cancel-delete is accepted and undoes the mark', async () => {
    const handle = await start(inGrace, '1h');
    workflows.push(handle.workflowId);
    await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.step === 'grace-period');

    const retry = await cli('retry-delete', inGrace);
    expect(retry.code).toBe(4);
    expect(retry.err).toMatch(
      new RegExp(
        `^error: retryNow refused by delete-org-${inGrace}: the deletion is not parked \\(step grace-period\\)`,
      ),
    );
    const abandon = await cli('abandon-delete', inGrace, '--reason', 'test', '--confirm', inGrace, '--json');
    expect(abandon.code).toBe(4);
    expect(JSON.parse(abandon.out)).toMatchObject({
      ok: false,
      exitCode: 4,
      error: expect.stringMatching(/not parked/),
    });

    const cancel = await cli('cancel-delete', inGrace, '--reason', 'customer renewed');
    expect(cancel.err).toBe('');
    expect(cancel.code).toBe(0);
    expect(cancel.out).toMatch(
      new RegExp(`^cancelDeletion accepted by delete-org-${inGrace} at step grace-period: the deletion stops`),
    );
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'cancelled', cancelled: { by: 'jest', reason: 'customer renewed' } });
    if (result.outcome !== 'cancelled') throw new Error(`expected a cancelled deletion, got ${result.outcome}`);
    expect(await readOrganizationStatus(admin.postgres, organizationDataMap(inGrace))).toBe(result.restoredStatus);
    // The refused requests changed nothing and left no trace in the run's history.
    const status = await handle.query<DeletionStatus>('deletionStatus');
    expect(status.notes.filter((n) => /ignored/.test(n))).toEqual([]);
  }, 180_000);

  it('past the point of no return cancel-delete is refused with the reason and exit 4; while parked retry-delete and abandon-delete are accepted', async () => {
    const handle = await start(parked, '1s');
    workflows.push(handle.workflowId);
    const parkedStatus = await waitForDeletionStatus(
      env.client,
      handle.workflowId,
      (s) => s.parked !== undefined,
      120_000,
    );
    expect(parkedStatus.parked?.step).toBe('redis');

    const cancel = await cli('cancel-delete', parked);
    expect(cancel.code).toBe(4);
    expect(cancel.out).not.toMatch(/cancellation sent/);
    expect(cancel.err).toMatch(
      new RegExp(
        `^error: cancelDeletion refused by delete-org-${parked}: the point of no return was passed at ${parkedStatus.pointOfNoReturnAt ?? '?'}`,
      ),
    );
    // The SDK throws the same refusal as a typed error.
    const refused = await rejectionOf(
      requestOfDeletion(env.client, parked, 'cancelDeletion', { by: 'jest', reason: 'too late' }),
    );
    expect(refused).toBeInstanceOf(DeletionRequestRefusedError);
    expect(refused).toMatchObject({ request: 'cancelDeletion', workflowId: handle.workflowId });

    const retry = await cli('retry-delete', parked, '--reason', 'ACL still wrong', '--json');
    expect(retry.code).toBe(0);
    expect(JSON.parse(retry.out)).toMatchObject({
      ok: true,
      request: 'retryNow',
      step: 'purging',
      effect: 'the parked step redis is tried again now',
    });
    await waitForDeletionStatus(
      env.client,
      handle.workflowId,
      (s) => s.parked !== undefined && s.notes.some((n) => n.startsWith('retryNow at redis by jest')),
      60_000,
    );
    const abandon = await cli('abandon-delete', parked, '--reason', 'fixing by hand', '--confirm', parked);
    expect(abandon.code).toBe(0);
    expect(abandon.out).toMatch(/^abandon accepted by delete-org-\S+ at step purging: the deletion stops at redis/);
    expect(failureText(await rejectionOf(handle.result()))).toMatch(/abandoned at redis by jest: fixing by hand/);
    const status = await handle.query<DeletionStatus>('deletionStatus');
    expect(status.notes.filter((n) => /ignored/.test(n))).toEqual([]);
  }, 240_000);
});
