import { rm } from 'node:fs/promises';
import * as path from 'node:path';
import { organizationDataMap } from '../src/platform/data-map';
import { dropSeededOrganization } from '../src/platform/seed-organization';
import { deletionWorkflowId } from '../src/contracts/deletion';
import { backupOrganization, deleteOrganization, restoreOrganization } from '../src/workflows';
import { createPostgresZoo, describePostgresSchema } from './fixtures/postgres-zoo';
import { createBareOrganization } from './support/bare-organization';
import { terminateIfRunning } from './support/deletion';
import { failureText } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

describe('the PostgreSQL schema zoo', () => {
  let env: TestWorker;
  const source = uniqueOrgId('zoo');
  const clone = uniqueOrgId('zooc');

  beforeAll(async () => {
    env = await startTestWorker('pgzoo');
  });
  const workflows: string[] = [];
  afterAll(async () => {
    if (env) {
      for (const id of workflows) await terminateIfRunning(env.client, id);
      for (const orgId of [source, clone]) {
        await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
        await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      }
      await env.shutdown();
    }
  });

  /** Runs a workflow; a failure becomes an error with its whole cause chain, which names the object. */
  async function run<T>(work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (err) {
      throw new Error(failureText(err), { cause: err });
    }
  }

  it('backs up and verifies, clones into a new id, restores under its own id after a drop, and after a deletion from the pre-deletion backup, each equal to the source by plain catalog queries and row texts', async () => {
    // Two tests may install it at once: the loser's "already exists" is fine.
    await env.clients.postgres.query('CREATE EXTENSION IF NOT EXISTS citext').catch(() => undefined);
    const schema = await createBareOrganization(env.clients, source);
    await createPostgresZoo(env.clients.postgres, schema);
    const before = await describePostgresSchema(env.clients.postgres, schema);

    const backup = await run(() =>
      env.client.workflow.execute(backupOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `backup-${source}-${Date.now()}`,
        args: [{ orgId: source, reason: 'zoo', stores: ['postgres'], verify: true }],
      }),
    );
    expect(backup.verification?.passed).toBe(true);

    const restored = await run(() =>
      env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `restore-${clone}-${Date.now()}`,
        args: [{ backupId: backup.backupId, orgId: source, targetOrgId: clone, mode: 'into-empty' }],
      }),
    );
    expect(restored.comparisons.every((c) => c.equal)).toBe(true);

    const copy = await describePostgresSchema(env.clients.postgres, organizationDataMap(clone).postgres.mainSchema);
    expect(copy).toEqual(before);
    // The source is as it was.
    expect(await describePostgresSchema(env.clients.postgres, schema)).toEqual(before);

    // Gone by hand, then restored under its own id (pg_restore straight into the platform database).
    await dropSeededOrganization(env.clients, source);
    const back = await run(() =>
      env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `restore-${source}-${Date.now()}`,
        args: [{ backupId: backup.backupId, orgId: source, mode: 'into-empty' }],
      }),
    );
    expect(back.comparisons.every((c) => c.equal)).toBe(true);
    expect(await describePostgresSchema(env.clients.postgres, schema)).toEqual(before);

    // Deleted by the saga (its own verified pre-deletion backup), then restored from that backup.
    const deletion = await run(() =>
      env.client.workflow.execute(deleteOrganization, {
        taskQueue: env.taskQueue,
        workflowId: deletionWorkflowId(source),
        args: [
          {
            orgId: source,
            confirmOrgId: source,
            requestedBy: 'jest',
            reason: 'zoo round trip',
            gracePeriod: '0s',
            backupRetention: '1h',
            storeDownAfter: '30s',
          },
        ],
      }),
    );
    if (deletion.outcome !== 'deleted') throw new Error(`the deletion ended ${deletion.outcome}`);
    workflows.push(deletion.certificate.retention.shredWorkflowId);
    const gone = await env.clients.postgres.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    expect(gone.rowCount).toBe(0);
    const preDeletion = deletion.certificate.backup;
    if (preDeletion.skipped) throw new Error('the deletion skipped its backup');
    const again = await run(() =>
      env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `restore-${source}-${Date.now()}`,
        args: [
          {
            backupId: preDeletion.backupId,
            orgId: source,
            mode: 'into-empty',
            override: { reason: 'zoo round trip: restore after deletion' },
          },
        ],
      }),
    );
    expect(again.comparisons.every((c) => c.equal)).toBe(true);
    expect(await describePostgresSchema(env.clients.postgres, schema)).toEqual(before);
  }, 900_000);
});
