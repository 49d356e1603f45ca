import { readdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { backupPlatform, pruneBackups } from '../src/workflows';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

describe('backupPlatform and pruneBackups', () => {
  let env: TestWorker;
  const orgs = [uniqueOrgId('pla'), uniqueOrgId('plb'), uniqueOrgId('plc')];
  const ghost = uniqueOrgId('plghost');

  beforeAll(async () => {
    env = await startTestWorker('platform');
    for (const orgId of orgs) await seedOrganization(env.clients, orgId, { scale: 'small', seed: orgId });
  });
  afterAll(async () => {
    if (env) {
      for (const orgId of [...orgs, ghost]) {
        await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
        await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      }
      await env.shutdown();
    }
  });

  it('backs up every organization with bounded concurrency across continue-as-new, reporting failures without stopping', async () => {
    const workflowId = `backup-platform-test-${Date.now()}`;
    const result = await env.client.workflow.execute(backupPlatform, {
      taskQueue: env.taskQueue,
      workflowId,
      // pageSize 2 forces a continue-as-new; the ghost organization fails and must not stop the others.
      args: [{ orgIds: [...orgs, ghost], pageSize: 2, concurrency: 2, reason: 'test' }],
    });
    expect(result.succeeded).toBe(3);
    expect(result.failed).toEqual([{ orgId: ghost, error: expect.stringMatching(/does not exist/) }]);
    for (const orgId of orgs) {
      const backups = await readdir(path.join(env.config.backup.directory, orgId));
      expect(backups.filter((b) => !b.startsWith('.') && b !== 'keys.json')).toHaveLength(1);
    }
    const globals = path.join(
      env.config.backup.directory,
      '_platform',
      result.platformBackupId,
      'postgres',
      'globals.sql',
    );
    await expect(readdir(path.dirname(globals))).resolves.toContain('globals.sql');
    // Four organizations at two a page: two full pages continue as new, the third (empty) page ends.
    const statuses: string[] = [];
    for await (const run of env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
      statuses.push(run.status.name);
    expect(statuses.sort()).toEqual(['COMPLETED', 'CONTINUED_AS_NEW', 'CONTINUED_AS_NEW']);
  });

  it('pruning keeps the newest complete backup and removes older ones beyond the policy', async () => {
    const orgId = orgs[0] ?? '';
    // Two more backups of the same organization, so it has three.
    for (let i = 0; i < 2; i++) {
      await env.client.workflow.execute(backupPlatform, {
        taskQueue: env.taskQueue,
        workflowId: `backup-platform-again-${i}-${Date.now()}`,
        args: [{ orgIds: [orgId], stores: ['postgres'] }],
      });
    }
    const before = (await readdir(path.join(env.config.backup.directory, orgId)))
      .filter((b) => /^\d{8}T/.test(b))
      .sort();
    expect(before).toHaveLength(3);
    const dry = await env.client.workflow.execute(pruneBackups, {
      taskQueue: env.taskQueue,
      workflowId: `prune-dry-${Date.now()}`,
      args: [{ orgId, keepLast: 1, keepDaily: 0, keepWeekly: 0, dryRun: true }],
    });
    expect(dry.organizations[0]?.removed).toHaveLength(2);
    expect(
      (await readdir(path.join(env.config.backup.directory, orgId))).filter((b) => /^\d{8}T/.test(b)),
    ).toHaveLength(3);
    const result = await env.client.workflow.execute(pruneBackups, {
      taskQueue: env.taskQueue,
      workflowId: `prune-${Date.now()}`,
      args: [{ orgId, keepLast: 1, keepDaily: 0, keepWeekly: 0 }],
    });
    expect(result.organizations[0]?.removed.sort()).toEqual(before.slice(0, 2));
    const after = (await readdir(path.join(env.config.backup.directory, orgId))).filter((b) => /^\d{8}T/.test(b));
    expect(after).toEqual([before[2]]);
  });
});
