import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { backupManifestSchema } from '../src/contracts/backup';
import { seedOrganization } from '../src/platform/seed-organization';
import { backupOrganization } from '../src/workflows';
import { failureText, rejectionOf } from './support/failures';
import { localActivityTypes, regularActivityTypes } from './support/history-activities';
import { freePort } from './support/free-port';
import { dropTestOrganizations } from './support/organizations';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

describe('a backup with the queue and Redis down', () => {
  let env: TestWorker;
  let natsPort: number;
  let redisPort: number;
  const orgId = uniqueOrgId('down');

  beforeAll(async () => {
    // The shared servers stay up: this worker alone sees NATS and Redis on ports nothing listens on,
    // so every connection it makes to them is really refused.
    natsPort = await freePort();
    redisPort = await freePort();
    const seeding = await startTestWorker('backup-seed-down');
    try {
      await seedOrganization(seeding.clients, orgId, { scale: 'small', seed: 'down' });
    } finally {
      await seeding.shutdown();
    }
    env = await startTestWorker('backup-stores-down', {
      NATS_URL: `nats://127.0.0.1:${natsPort}`,
      REDIS_URL: `redis://127.0.0.1:${redisPort}/0`,
      PREFLIGHT_TIMEOUT_MS: '1500',
    });
  });

  afterAll(async () => {
    if (env) {
      // Cleaning up needs the real queue and Redis.
      const cleaning = await startTestWorker('backup-clean-down');
      await dropTestOrganizations(cleaning, [orgId]).finally(() => cleaning.shutdown());
    }
    await env?.shutdown();
  });

  it('backs up PostgreSQL and ClickHouse, verifies, and records the queue and Redis counts as unavailable', async () => {
    const workflowId = `backup-${orgId}-${Date.now()}`;
    const summary = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId,
      args: [{ orgId, stores: ['postgres', 'clickhouse'], verify: true }],
    });
    expect(summary.verification?.passed).toBe(true);
    const manifest = backupManifestSchema.parse(
      JSON.parse(
        await readFile(path.join(env.config.backup.directory, orgId, summary.backupId, 'manifest.json'), 'utf8'),
      ),
    );
    expect(manifest.stores).toEqual(['postgres', 'clickhouse']);
    expect(manifest.artifacts.some((a) => a.store === 'clickhouse')).toBe(true);
    expect(manifest.artifacts.some((a) => a.store === 'postgres')).toBe(true);
    // Unknown, not zero: the lists are empty and the reason names the store's address.
    expect(manifest.ephemeral.queue).toEqual([]);
    expect(manifest.ephemeral.redis).toEqual([]);
    expect(manifest.ephemeral.unavailable?.queue).toMatch(/./);
    expect(manifest.ephemeral.unavailable?.redis).toMatch(/./);
    // The preflight asked only the stores the backup touches, in the backup's own history (no child),
    // as local activities, like the checks and counts; the store backups and the commit as regular ones.
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const events = history.events ?? [];
    const local = localActivityTypes(history);
    expect(local.filter((name) => name.startsWith('probe')).sort()).toEqual(['probeClickHouse', 'probePostgres']);
    expect(local.filter((name) => !name.startsWith('probe')).sort()).toEqual([
      'assertNoConflictingOperation',
      'assertOrganizationExists',
      'countQueueMessages',
      'countRedisKeys',
    ]);
    expect(regularActivityTypes(history).sort()).toEqual(['backupClickHouse', 'backupPostgres', 'commitBackup']);
    expect(
      events.some(
        (e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowType?.name === 'platformPreflight',
      ),
    ).toBe(false);
  }, 180_000);

  it('a store the backup needs that does not answer fails it as the preflight, naming the store, before its checks and with nothing written', async () => {
    const clickhousePort = await freePort();
    const noClickHouse = await startTestWorker('backup-clickhouse-down', {
      CLICKHOUSE_URL: `http://127.0.0.1:${clickhousePort}`,
      PREFLIGHT_TIMEOUT_MS: '1500',
    });
    // An organization that does not exist: the checks would refuse it, but the preflight speaks first.
    const missing = uniqueOrgId('downmissing');
    try {
      const failure = failureText(
        await rejectionOf(
          noClickHouse.client.workflow.execute(backupOrganization, {
            taskQueue: noClickHouse.taskQueue,
            workflowId: `backup-${missing}-${Date.now()}`,
            args: [{ orgId: missing, stores: ['postgres', 'clickhouse'], verify: false }],
          }),
        ),
      );
      expect(failure).toMatch(/preflight failed: .*clickhouse/i);
      expect(failure).toContain(`127.0.0.1:${clickhousePort}`);
      expect(failure).not.toMatch(/does not exist/);
      await expect(stat(path.join(noClickHouse.config.backup.directory, missing))).rejects.toThrow(/ENOENT/);
    } finally {
      await noClickHouse.shutdown();
    }
  }, 120_000);

  it('PostgreSQL down fails the backup as the preflight within seconds: the organization check, which reads it too, is cancelled, not retried for minutes', async () => {
    const postgresPort = await freePort();
    const noPostgres = await startTestWorker('backup-postgres-down', {
      POSTGRES_URL: `postgres://postgres@127.0.0.1:${postgresPort}/eloquent`,
      PREFLIGHT_TIMEOUT_MS: '1500',
    });
    const orgId = uniqueOrgId('downpg');
    try {
      const started = Date.now();
      const failure = failureText(
        await rejectionOf(
          noPostgres.client.workflow.execute(backupOrganization, {
            taskQueue: noPostgres.taskQueue,
            workflowId: `backup-${orgId}-${Date.now()}`,
            args: [{ orgId, stores: ['postgres'], verify: false }],
          }),
        ),
      );
      expect(failure).toMatch(/preflight failed: .*postgres/i);
      expect(failure).toContain(`127.0.0.1:${postgresPort}`);
      // Three probe attempts take a few seconds; assertOrganizationExists alone would retry ten times.
      expect(Date.now() - started).toBeLessThan(30_000);
      await expect(stat(path.join(noPostgres.config.backup.directory, orgId))).rejects.toThrow(/ENOENT/);
    } finally {
      await noPostgres.shutdown();
    }
  }, 240_000);
});
