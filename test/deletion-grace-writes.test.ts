import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { jetstream } from '@nats-io/jetstream';
import { z } from 'zod';
import { startOrganizationDeletion } from '../src/client/deletion';
import type { DeleteOrganizationInput, DeletionCertificate } from '../src/contracts/deletion';
import { organizationDataMap } from '../src/platform/data-map';
import { quotePgQualified, quoteClickHouseQualified } from '../src/platform/quoting';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { archiveChat, restoreOrganization } from '../src/workflows';
import { removeDeletionArtifacts, terminateIfRunning, waitForDeletionStatus } from './support/deletion';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

const countRow = z.object({ n: z.union([z.string(), z.number()]).transform(Number) });

/**
 * Item 6 of issue 15: the verified backup of a deletion is taken before a grace period of up to
 * days. What the organization writes meanwhile (through its API keys, or the project's own
 * `archiveChat`) must be in the backup the certificate names, or it is purged with no copy.
 */
describe('writes during the grace period of a deletion', () => {
  let env: TestWorker;
  const orgs: string[] = [];
  const workflows: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('grace-writes');
  });
  afterAll(async () => {
    if (!env) return;
    for (const id of workflows) await terminateIfRunning(env.client, id);
    for (const orgId of orgs) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await removeDeletionArtifacts(env.clients, env.config.backup.directory, orgId);
      await env.clients.postgres
        .query('DELETE FROM eloquent_ops.api_key_revocations WHERE org_id = $1', [orgId])
        .catch(() => undefined);
    }
    await env.shutdown();
  });

  function request(orgId: string, gracePeriod: string): DeleteOrganizationInput {
    return {
      orgId,
      confirmOrgId: orgId,
      requestedBy: 'jest',
      reason: 'grace-period writes',
      gracePeriod,
      backupRetention: '1h',
      storeDownAfter: '30s',
    };
  }

  async function pgCount(sql: string, params: unknown[] = []): Promise<number> {
    const r = await env.clients.postgres.query(sql, params);
    return countRow.parse(r.rows[0]).n;
  }

  async function chCount(sql: string): Promise<number> {
    const r = await env.clients.clickhouse.query({ query: sql, format: 'JSONEachRow' });
    return countRow.parse((await r.json<unknown>())[0]).n;
  }

  it('a row, an API key and an archived chat message written during the grace period are in the verified backup the certificate names, and the keys are revoked', async () => {
    const orgId = uniqueOrgId('gw');
    const clone = uniqueOrgId('gwc');
    orgs.push(orgId, clone);
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'grace-writes' });
    const map = organizationDataMap(orgId);
    const keysBefore = await pgCount('SELECT count(*) AS n FROM public.api_keys WHERE org_id = $1', [orgId]);
    expect(keysBefore).toBeGreaterThan(0);

    const handle = await startOrganizationDeletion(env.client, request(orgId, '12s'), { taskQueue: env.taskQueue });
    workflows.push(handle.workflowId);
    const grace = await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.step === 'grace-period');
    const preDeletionBackupId = grace.backupId;
    expect(preDeletionBackupId).toBeDefined();

    // What the platform writes through an API key while the deletion waits: a row in the
    // organization's schema, an event in ClickHouse, and a new API key.
    await env.clients.postgres.query(
      `INSERT INTO ${quotePgQualified(map.postgres.mainSchema, 'workflow_state')} (state, step, started_at)
       VALUES ('written-during-grace', 7, now())`,
    );
    await env.clients.clickhouse.command({
      query: `INSERT INTO ${quoteClickHouseQualified(map.clickhouse.database, 'analytics_events')} (event_id, ts, user_id, event, props, value)
              VALUES (987654321, now(), NULL, 'written-during-grace', [], NULL)`,
    });
    await env.clients.postgres.query(
      `INSERT INTO public.api_keys (org_id, id, user_id, name, hashed_key)
       SELECT org_id, md5(random()::text)::uuid, user_id, 'created during grace', '\\x00'::bytea
         FROM public.api_keys WHERE org_id = $1 LIMIT 1`,
      [orgId],
    );
    // The hourly chat archival runs during the grace period too (the deletion may still be cancelled).
    const chatPrefix = map.queue.streams.find((s) => s.stream === 'CHAT')?.subjectPrefix ?? '';
    await jetstream(await env.clients.nats.connection()).publish(
      `${chatPrefix}.grace-room`,
      JSON.stringify({ text: 'archived during grace' }),
    );
    await env.client.workflow.execute(archiveChat, {
      taskQueue: env.taskQueue,
      workflowId: `archive-chat-${orgId}-${Date.now()}`,
      args: [{ orgId, olderThanMs: 0 }],
    });
    const archiveTable = quoteClickHouseQualified(map.clickhouse.database, map.clickhouse.chatArchiveTable);
    expect(await chCount(`SELECT count() AS n FROM ${archiveTable} WHERE payload LIKE '%archived during grace%'`)).toBe(
      1,
    );

    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${JSON.stringify(result)}`);
    const certificate: DeletionCertificate = result.certificate;
    workflows.push(certificate.retention.shredWorkflowId);
    if (certificate.backup.skipped) throw new Error('the backup must not be skipped');
    expect(certificate.backup.verified).toBe(true);
    // The pre-deletion backup is older than the writes: the certificate names a later one, and says why.
    expect(certificate.backup.backupId).not.toBe(preDeletionBackupId);
    expect(certificate.lastState).toMatchObject({ preDeletionBackupId, changed: true });
    expect(certificate.lastState?.changedObjects).toEqual(
      expect.arrayContaining([
        'schema:org_{org}.workflow_state',
        'clickhouse:analytics_events',
        'clickhouse:chat_archive',
        'shared:public.api_keys',
      ]),
    );
    // Every API key of the organization, the new one too, was revoked at the point of no return.
    expect(certificate.lastState?.apiKeysRevoked).toBe(keysBefore + 1);
    expect(await pgCount('SELECT count(*) AS n FROM eloquent_ops.api_key_revocations WHERE org_id = $1', [orgId])).toBe(
      keysBefore + 1,
    );
    // Both backups are held for the retention.
    for (const id of [preDeletionBackupId ?? '', certificate.backup.backupId])
      await expect(stat(path.join(env.config.backup.directory, orgId, id, 'hold.json'))).resolves.toBeDefined();

    // The named backup really holds the last state: a clone restored from it has every write, read back by plain SQL.
    await env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${clone}-${Date.now()}`,
      args: [
        {
          backupId: certificate.backup.backupId,
          orgId,
          targetOrgId: clone,
          mode: 'into-empty',
          override: { reason: 'test: read back the final backup' },
        },
      ],
    });
    const cloneMap = organizationDataMap(clone);
    expect(
      await pgCount(
        `SELECT count(*) AS n FROM ${quotePgQualified(cloneMap.postgres.mainSchema, 'workflow_state')} WHERE state = 'written-during-grace'`,
      ),
    ).toBe(1);
    expect(
      await pgCount(`SELECT count(*) AS n FROM public.api_keys WHERE org_id = $1 AND name = 'created during grace'`, [
        clone,
      ]),
    ).toBe(1);
    expect(
      await chCount(
        `SELECT count() AS n FROM ${quoteClickHouseQualified(cloneMap.clickhouse.database, 'analytics_events')} WHERE event = 'written-during-grace'`,
      ),
    ).toBe(1);
    expect(
      await chCount(
        `SELECT count() AS n FROM ${quoteClickHouseQualified(cloneMap.clickhouse.database, cloneMap.clickhouse.chatArchiveTable)} WHERE payload LIKE '%archived during grace%'`,
      ),
    ).toBe(1);
  }, 240_000);

  it('with nothing written during the grace period, no second backup is taken and the certificate names the pre-deletion one', async () => {
    const orgId = uniqueOrgId('gq');
    orgs.push(orgId);
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'grace-quiet' });
    const handle = await startOrganizationDeletion(env.client, request(orgId, '2s'), { taskQueue: env.taskQueue });
    workflows.push(handle.workflowId);
    const result = await handle.result();
    if (result.outcome !== 'deleted' || result.certificate.backup.skipped) throw new Error('expected a deletion');
    workflows.push(result.certificate.retention.shredWorkflowId);
    // The `deleting` mark and the revocation are the deletion's own changes, not the organization's.
    expect(result.certificate.lastState).toMatchObject({
      preDeletionBackupId: result.certificate.backup.backupId,
      changed: false,
      changedObjects: [],
    });
    const backups = await createFilesystemBackupStore(env.config.backup).listBackups(orgId);
    expect(backups.map((b) => b.backupId)).toEqual([result.certificate.backup.backupId]);
  }, 120_000);

  it('archiveChat waits for a seal in progress and then skips the sealed organization, alone and in a fan-out, writing nothing', async () => {
    const orgId = uniqueOrgId('gs');
    orgs.push(orgId);
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'grace-seal' });
    const map = organizationDataMap(orgId);
    const chatPrefix = map.queue.streams.find((s) => s.stream === 'CHAT')?.subjectPrefix ?? '';
    await jetstream(await env.clients.nats.connection()).publish(
      `${chatPrefix}.sealed-room`,
      JSON.stringify({ text: 'sent while sealing' }),
    );
    const archiveTable = quoteClickHouseQualified(map.clickhouse.database, map.clickhouse.chatArchiveTable);
    const archivedNow = () =>
      chCount(`SELECT count() AS n FROM ${archiveTable} WHERE payload LIKE '%sent while sealing%'`);

    // What the seal does, held open: the organization row locked, its status about to become `deleted`.
    const sealing = await env.clients.postgres.connect();
    try {
      await sealing.query('BEGIN');
      await sealing.query('SELECT status FROM public.organizations WHERE id = $1 FOR UPDATE', [orgId]);
      const archival = env.client.workflow.execute(archiveChat, {
        taskQueue: env.taskQueue,
        workflowId: `archive-chat-${orgId}-${Date.now()}`,
        args: [{ orgId, olderThanMs: 0 }],
      });
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      expect(await archivedNow()).toBe(0);
      await sealing.query("UPDATE public.organizations SET status = 'deleted' WHERE id = $1", [orgId]);
      await sealing.query('COMMIT');
      const result = await archival;
      if (!('stream' in result)) throw new Error('expected one organization');
      expect(result.skipped).toMatch(/being deleted/);
      expect(result.archived).toBe(0);
    } finally {
      await sealing.query('ROLLBACK').catch(() => undefined);
      sealing.release();
    }
    expect(await archivedNow()).toBe(0);

    const fanOut = await env.client.workflow.execute(archiveChat, {
      taskQueue: env.taskQueue,
      workflowId: `archive-chat-all-${orgId}-${Date.now()}`,
      args: [{ orgIds: [orgId], olderThanMs: 0 }],
    });
    expect(fanOut).toMatchObject({ organizations: 1, skipped: 1, archived: 0, failedCount: 0 });
    expect(await archivedNow()).toBe(0);
  }, 180_000);
});
