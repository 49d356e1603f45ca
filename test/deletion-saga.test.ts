import { randomUUID } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import type { Activities } from '../src/activities';
import {
  cancelOrganizationDeletion,
  decideParkedDeletion,
  graceTimeLeftMs,
  startOrganizationDeletion,
} from '../src/client/deletion';
import { loadConfig } from '../src/config';
import type { BackupManifest } from '../src/contracts/backup';
import type { DeleteOrganizationInput, DeletionStatus, PurgeStep, RemovedCounts } from '../src/contracts/deletion';
import type { StoreProbe } from '../src/contracts/preflight';
import { FailureType } from '../src/errors';
import { restoreOrganization } from '../src/workflows';
import { terminateIfRunning, waitForDeletionStatus } from './support/deletion';
import { failureText, rejectionOf } from './support/failures';
import { readWorkflowIds, recordTree, writeWorkflowIds } from './support/history-recording';
import { WORKFLOW_BUNDLE_PATH } from './support/paths';
import { uniqueOrgId } from './support/test-worker';

/**
 * The saga's branches that the stack tests cannot reach on demand, with every activity mocked: the
 * residue re-purge loop, parking after the last re-purge round, failing compensations. The workflow
 * code is the real bundle on the real dev server (127.0.0.1:7233); time is real too, so durations
 * are short: @temporalio/testing's time-skipping server is a prebuilt download this machine cannot
 * fetch (only package registries are reachable), and its createLocal() would start the same dev server.
 *
 * `RECORD_HISTORIES=1` also writes each test's histories to test/histories/mocked-<scenario>.*.json
 * for test/replay.test.ts; `RECORD_WORKFLOW_BUNDLE=<file>` runs another bundle (e.g. of the code
 * before a change), so its histories can be replayed on the code after it.
 */
const RECORD = process.env.RECORD_HISTORIES === '1';

describe('deleteOrganization and restoreOrganization with mocked activities', () => {
  let connection: NativeConnection;
  let clientConnection: Connection;
  let client: Client;
  let worker: Worker;
  let running: Promise<void>;
  const taskQueue = `test-saga-${randomUUID().slice(0, 8)}`;
  const workflows: string[] = [];
  /** The mocks of the test that runs now; each test sets the ones it needs. */
  let mocks: Partial<Activities> = {};
  /** The test's name in recorded history files, and the workflows it started. */
  let scenario = '';
  let recordFrom = 0;
  const recordAs = (name: string) => {
    scenario = `mocked-${name}`;
    recordFrom = workflows.length;
  };

  /** Every activity the worker offers delegates to the current test's mock, and fails loudly without one. */
  function delegate(name: keyof Activities) {
    return async (...args: unknown[]): Promise<unknown> => {
      const mock = mocks[name] as ((...a: unknown[]) => Promise<unknown>) | undefined;
      if (!mock)
        throw ApplicationFailure.nonRetryable(`activity ${name} is not mocked in this test`, FailureType.InvalidInput);
      return mock(...args);
    };
  }

  beforeAll(async () => {
    try {
      Runtime.install({ logger: new DefaultLogger('ERROR') });
    } catch {
      // Installed already by another test file in this process.
    }
    const config = loadConfig();
    connection = await NativeConnection.connect({ address: config.temporal.address });
    clientConnection = await Connection.connect({ address: config.temporal.address });
    client = new Client({ connection: clientConnection, namespace: config.temporal.namespace });
    const names: Array<keyof Activities> = [
      'probePostgres',
      'probeClickHouse',
      'probeQueue',
      'probeRedis',
      'assertOrganizationExists',
      'assertNoConflictingOperation',
      'readOrganizationStatus',
      'markOrganizationDeleting',
      'restoreOrganizationStatus',
      'revokeOrganizationSessions',
      'describeForDeletion',
      'checkPostgresDeletable',
      'holdBackup',
      'sealOrganizationForPurge',
      'recordDeletionCertificate',
      'purgeOrganizationQueue',
      'purgeOrganizationRedis',
      'purgeOrganizationClickHouse',
      'purgeOrganizationSchemas',
      'purgeOrganizationSharedRows',
      'locateBackup',
      'findDeletionRecord',
      'checkBackupArtifacts',
      'readBackupManifest',
      'summarizeOrganization',
      'restorePostgres',
      'restoreClickHouse',
      'checkPostgresRestore',
      'fingerprintPostgresScratch',
      'fingerprintClickHouseScratch',
      'dropPostgresScratch',
      'dropClickHouseScratch',
      'clearOrganizationPostgres',
      'clearOrganizationClickHouse',
      'fingerprintOrganization',
    ];
    worker = await Worker.create({
      connection,
      namespace: config.temporal.namespace,
      taskQueue,
      workflowBundle: { codePath: process.env.RECORD_WORKFLOW_BUNDLE ?? WORKFLOW_BUNDLE_PATH },
      activities: Object.fromEntries(names.map((name) => [name, delegate(name)])),
    });
    running = worker.run();
  });
  afterEach(async () => {
    if (!RECORD || scenario === '') return;
    const workflowIds = await readWorkflowIds();
    await recordTree(client, scenario, workflows.slice(recordFrom), workflowIds);
    await writeWorkflowIds(workflowIds);
    scenario = '';
  });
  afterAll(async () => {
    for (const id of workflows) await terminateIfRunning(client, id);
    worker?.shutdown();
    await running;
    await clientConnection?.close();
    await connection?.close();
  });

  const probe = (store: StoreProbe['store']) => async (): Promise<StoreProbe> => ({
    store,
    address: 'mock',
    version: 'mock',
    latencyMs: 0,
    details: {},
  });

  /** Mocks of a deletion that goes well; `purged` counts the purge calls per step. */
  function healthyDeletion(purged: Record<PurgeStep, number>): Partial<Activities> {
    const purge = (step: PurgeStep) => async (): Promise<RemovedCounts> => {
      purged[step]++;
      return { [`${step}-objects`]: 1 };
    };
    return {
      probePostgres: probe('postgres'),
      probeClickHouse: probe('clickhouse'),
      probeQueue: probe('queue'),
      probeRedis: probe('redis'),
      assertOrganizationExists: async () => undefined,
      assertNoConflictingOperation: async () => undefined,
      readOrganizationStatus: async () => 'active',
      markOrganizationDeleting: async () => undefined,
      restoreOrganizationStatus: async () => ({ status: 'active' }),
      revokeOrganizationSessions: async () => 2,
      describeForDeletion: async () => ({ exists: false, lines: [], steps: [] }),
      checkPostgresDeletable: async () => ({ extensions: [] }),
      sealOrganizationForPurge: async () => ({ sealedAt: new Date().toISOString(), apiKeysRevoked: 0 }),
      recordDeletionCertificate: async () => undefined,
      purgeOrganizationQueue: purge('queue'),
      purgeOrganizationRedis: purge('redis'),
      purgeOrganizationClickHouse: purge('clickhouse'),
      purgeOrganizationSchemas: purge('postgres-schemas'),
      purgeOrganizationSharedRows: purge('postgres-shared-rows'),
    };
  }

  const noPurges = (): Record<PurgeStep, number> => ({
    queue: 0,
    redis: 0,
    clickhouse: 0,
    'postgres-schemas': 0,
    'postgres-shared-rows': 0,
  });

  async function startDeletion(orgId: string, extra: Partial<DeleteOrganizationInput> = {}) {
    const handle = await startOrganizationDeletion(
      client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 'mocked saga',
        skipBackup: true,
        gracePeriod: '0s',
        backupRetention: '1h',
        storeDownAfter: '1s',
        parkedRetryInterval: '10m',
        ...extra,
      },
      { taskQueue },
    );
    workflows.push(handle.workflowId);
    return handle;
  }

  it('residue written after its store was purged is purged again until the stores are clean, and the certificate says so', async () => {
    recordAs('residue-re-purged');
    const orgId = uniqueOrgId('sagares');
    const purged = noPurges();
    let residueChecks = 0;
    mocks = {
      ...healthyDeletion(purged),
      // The look at the point of no return, then two residue checks that find a late cache fill.
      describeForDeletion: async () => {
        if (purged.queue === 0) return { exists: true, lines: ['redis: 3 keys'], steps: ['redis'] };
        residueChecks++;
        return residueChecks <= 2
          ? { exists: true, lines: [`redis: ${residueChecks} late keys`], steps: ['redis'] }
          : { exists: false, lines: [], steps: [] };
      },
    };
    const handle = await startDeletion(orgId);
    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${result.outcome}`);
    expect(purged).toEqual({ queue: 1, redis: 3, clickhouse: 1, 'postgres-schemas': 1, 'postgres-shared-rows': 1 });
    expect(result.certificate.residueCheck).toMatchObject({
      clean: true,
      found: ['redis: 1 late keys'],
      purgedAgain: ['redis'],
    });
    expect(result.certificate.foundAtPointOfNoReturn).toEqual(['redis: 3 keys']);
    expect(result.certificate.steps.find((s) => s.step === 'redis')).toMatchObject({
      rounds: 3,
      removed: { 'redis-objects': 3 },
    });
    expect(result.certificate.removed.redis).toEqual({ 'redis-objects': 3 });
    const status = await handle.query<DeletionStatus>('deletionStatus');
    expect(status.notes).toContain('residue found and purged again: redis: 1 late keys');
  });

  it('residue that survives the last re-purge round parks the run at residue-check; retryNow purges again and completes', async () => {
    recordAs('residue-parked-retried');
    const orgId = uniqueOrgId('sagapark');
    const purged = noPurges();
    let writerStopped = false;
    mocks = {
      ...healthyDeletion(purged),
      // Something keeps writing to the queue until the operator stops it.
      describeForDeletion: async () =>
        writerStopped
          ? { exists: false, lines: [], steps: [] }
          : { exists: true, lines: ['queue: 1 message'], steps: ['queue'] },
    };
    const handle = await startDeletion(orgId);
    const parked = await waitForDeletionStatus(client, handle.workflowId, (s) => s.parked !== undefined, 60_000);
    expect(parked.step).toBe('residue-check');
    expect(parked.parked).toMatchObject({
      step: 'residue-check',
      reason: 'residue remains after 3 re-purges: queue: 1 message',
      signals: ['retryNow', 'abandon'],
    });
    // The first purge and three re-purges, then no more until an operator decides.
    expect(parked.purge.queue.rounds).toBe(4);
    expect(purged.queue).toBe(4);

    writerStopped = true;
    await decideParkedDeletion(client, orgId, 'retryNow', { by: 'jest', reason: 'writer stopped' });
    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${result.outcome}`);
    // After retryNow the rounds start again: one more re-purge, then a clean check.
    expect(purged.queue).toBe(5);
    expect(result.certificate.residueCheck).toMatchObject({ clean: true, purgedAgain: ['queue'] });
    const status = await handle.query<DeletionStatus>('deletionStatus');
    expect(status.parked).toBeUndefined();
    expect(status.notes).toContain('retryNow at residue-check by jest: writer stopped');
  });

  it('a compensation that fails is reported beside the failure that set it off, and the deletion still fails before deleting anything', async () => {
    recordAs('deletion-compensation-fails');
    const orgId = uniqueOrgId('sagacomp');
    const purged = noPurges();
    mocks = {
      ...healthyDeletion(purged),
      revokeOrganizationSessions: async () => {
        throw ApplicationFailure.nonRetryable(
          `redis refused to revoke the sessions of ${orgId}`,
          FailureType.StoreRejected,
        );
      },
      restoreOrganizationStatus: async () => {
        throw ApplicationFailure.nonRetryable('the organizations table is read-only', FailureType.StoreRejected);
      },
    };
    const handle = await startDeletion(orgId);
    const failure = await rejectionOf(handle.result());
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(failureText(failure)).toContain(
      `deletion of organization "${orgId}" stopped at step marking-deleting before the point of no return: redis refused to revoke the sessions of ${orgId}; ` +
        'compensated: FAILED: status restored to "active": the organizations table is read-only; no data was deleted',
    );
    const status = await handle.query<DeletionStatus>('deletionStatus');
    expect(status.step).toBe('failed');
    expect(status.failure).toEqual({
      step: 'marking-deleting',
      message: `redis refused to revoke the sessions of ${orgId}`,
      compensations: ['FAILED: status restored to "active": the organizations table is read-only'],
    });
    expect(purged).toEqual(noPurges());
  });

  it('during the grace period the status says when it ends, the caller computes the time left, and a cancel restores the status', async () => {
    recordAs('deletion-grace-cancelled');
    const orgId = uniqueOrgId('sagagrace');
    const purged = noPurges();
    const restored: string[] = [];
    mocks = {
      ...healthyDeletion(purged),
      restoreOrganizationStatus: async (input: { orgId: string; status: string }) => {
        restored.push(input.status);
        return { status: input.status };
      },
    };
    const started = Date.now();
    const handle = await startDeletion(orgId, { gracePeriod: '10m' });
    const grace = await waitForDeletionStatus(client, handle.workflowId, (s) => s.step === 'grace-period', 30_000);
    const endsAt = Date.parse(grace.gracePeriodEndsAt ?? '');
    expect(endsAt).toBeGreaterThanOrEqual(started + 10 * 60_000 - 1_000);
    expect(endsAt).toBeLessThanOrEqual(Date.now() + 10 * 60_000);
    expect(graceTimeLeftMs(grace, endsAt - 5_000)).toBe(5_000);
    await cancelOrganizationDeletion(client, orgId, { by: 'jest', reason: 'wrong organization' });
    const result = await handle.result();
    expect(result).toMatchObject({
      outcome: 'cancelled',
      restoredStatus: 'active',
      sessionsRevoked: 2,
      cancelled: { by: 'jest', reason: 'wrong organization' },
    });
    expect(restored).toEqual(['active']);
    expect(purged).toEqual(noPurges());
  });

  it('a restore whose compensation fails names the original failure and the failed compensation, and runs the compensations after it', async () => {
    recordAs('restore-compensation-fails');
    const orgId = uniqueOrgId('sagarst');
    const backupId = '20260101T000000Z-mock';
    const calls: string[] = [];
    const manifest = {
      stores: ['postgres', 'clickhouse'],
      artifacts: [],
      fingerprint: { objects: [] },
    } as unknown as BackupManifest;
    mocks = {
      locateBackup: async () => ({ orgId, backupId }),
      assertNoConflictingOperation: async () => undefined,
      findDeletionRecord: async () => undefined,
      checkBackupArtifacts: async () => [],
      readBackupManifest: async () => manifest,
      summarizeOrganization: async () => [],
      checkPostgresRestore: async () => ({ schemasArchive: true }),
      // The staged copy proves out; the load into the target then fails.
      fingerprintPostgresScratch: async () => [],
      fingerprintClickHouseScratch: async () => [],
      dropPostgresScratch: async () => ({ dropped: true }),
      dropClickHouseScratch: async () => undefined,
      restoreClickHouse: async (input: { scratchDatabase?: string }) => {
        if (!input.scratchDatabase) calls.push('restoreClickHouse');
        return { database: input.scratchDatabase ?? 'x', tables: 0, rows: 0, detachedStreams: [] };
      },
      restorePostgres: async (input: { scratchDatabase?: string }) => {
        if (input.scratchDatabase) return { database: input.scratchDatabase, schemas: [], sharedRows: {} };
        calls.push('restorePostgres');
        throw ApplicationFailure.nonRetryable('schema org_x.widgets: permission denied', FailureType.StoreRejected);
      },
      clearOrganizationPostgres: async () => {
        calls.push('clearOrganizationPostgres');
        throw ApplicationFailure.nonRetryable('postgres: connection refused', FailureType.StoreRejected);
      },
      clearOrganizationClickHouse: async () => {
        calls.push('clearOrganizationClickHouse');
      },
    };
    const workflowId = `restore-${orgId}-${Date.now()}`;
    workflows.push(workflowId);
    const failure = await rejectionOf(
      client.workflow.execute(restoreOrganization, { taskQueue, workflowId, args: [{ backupId, orgId }] }),
    );
    const text = failureText(failure);
    expect(text).toContain(
      `restore of ${orgId}/${backupId} into ${orgId} failed at step "postgres": schema org_x.widgets: permission denied`,
    );
    expect(text).toContain(
      `FAILED: what this restore wrote into PostgreSQL of ${orgId} was removed: postgres: connection refused; ` +
        `what this restore wrote into ClickHouse of ${orgId} was removed; target ${orgId} may NOT be as it was before`,
    );
    // A failed compensation does not stop the ones after it.
    expect(calls).toEqual(['restorePostgres', 'clearOrganizationPostgres', 'clearOrganizationClickHouse']);
  });
});
