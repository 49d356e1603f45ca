import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { deletionInEffect, readDeletionLog } from '../src/activities/cross-store/deletion-log';
import { runCli } from '../src/cli/main';
import {
  cancelOrganizationDeletion,
  DeletionAlreadyRunningError,
  graceTimeLeftMs,
  reapplyDeletions,
  startOrganizationDeletion,
} from '../src/client/deletion';
import type { DeleteOrganizationInput, DeletionCertificate } from '../src/contracts/deletion';
import { describeOrganization } from '../src/platform/describe';
import {
  compareFingerprints,
  fingerprintOrganization,
  type OrganizationFingerprint,
} from '../src/platform/fingerprint';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { deleteOrganization, restoreOrganization } from '../src/workflows';
import {
  fingerprintWithoutSessions,
  isSessionObject,
  removeDeletionArtifacts,
  terminateIfRunning,
  waitForDeletionStatus,
} from './support/deletion';
import { captureIo } from './support/cli-io';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

describe('deleteOrganization', () => {
  let env: TestWorker;
  const orgs: string[] = [];
  const workflows: string[] = [];

  /** A seeded organization this file cleans up. */
  async function seeded(orgId: string, seed: string): Promise<string> {
    orgs.push(orgId);
    await seedOrganization(env.clients, orgId, { scale: 'small', seed });
    return orgId;
  }

  function request(orgId: string, extra: Partial<DeleteOrganizationInput> = {}): DeleteOrganizationInput {
    return {
      orgId,
      confirmOrgId: orgId,
      requestedBy: 'jest',
      reason: 'integration test',
      gracePeriod: '0s',
      backupRetention: '1h',
      storeDownAfter: '30s',
      ...extra,
    };
  }

  async function organizationStatus(orgId: string): Promise<string | undefined> {
    const r = await env.clients.postgres.query<{ status: string }>(
      'SELECT status FROM public.organizations WHERE id = $1',
      [orgId],
    );
    return r.rows[0]?.status;
  }

  async function backupsOf(orgId: string): Promise<string[]> {
    return (await createFilesystemBackupStore(env.config.backup).listBackups(orgId)).map((b) => b.backupId);
  }

  beforeAll(async () => {
    env = await startTestWorker('deletion');
  });
  afterAll(async () => {
    if (!env) return;
    for (const id of workflows) await terminateIfRunning(env.client, id);
    for (const orgId of orgs) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await removeDeletionArtifacts(env.clients, env.config.backup.directory, orgId);
    }
    await env.shutdown();
  });

  it('deleting org_ab removes all of it from every store and leaves org_abc and two others bit-for-bit unchanged', async () => {
    const base = uniqueOrgId('dl');
    const target = await seeded(`${base}ab`, 'target');
    // `<base>abc` starts with the target's id: every LIKE, glob or prefix mistake would catch it.
    const others = [
      await seeded(`${base}abc`, 'neighbour'),
      await seeded(uniqueOrgId('dlo'), 'other1'),
      await seeded(uniqueOrgId('dlp'), 'other2'),
    ];
    const before = new Map<string, OrganizationFingerprint>();
    for (const o of others) before.set(o, await fingerprintOrganization(env.clients, o));
    const targetBefore = await describeOrganization(env.clients, target);
    expect(targetBefore.exists).toBe(true);

    const started = Date.now();
    const handle = await startOrganizationDeletion(env.client, request(target), { taskQueue: env.taskQueue });
    workflows.push(handle.workflowId);
    expect(handle.workflowId).toBe(`delete-org-${target}`);
    const result = await handle.result();
    const wallMs = Date.now() - started;
    if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${JSON.stringify(result)}`);
    const certificate: DeletionCertificate = result.certificate;
    workflows.push(certificate.retention.shredWorkflowId);
    process.stdout.write(`deletion of a small organization (grace 0): ${wallMs} ms\n`);

    // Nothing of the target in any store.
    const after = await describeOrganization(env.clients, target);
    expect(after.exists).toBe(false);
    expect((await fingerprintOrganization(env.clients, target)).objects.filter((o) => o.rows > 0)).toEqual([]);
    expect(await organizationStatus(target)).toBeUndefined();

    // Nothing of anyone else changed.
    for (const o of others) {
      const comparison = compareFingerprints(
        before.get(o) as OrganizationFingerprint,
        await fingerprintOrganization(env.clients, o),
      );
      expect({ org: o, differences: comparison.differences }).toEqual({ org: o, differences: [] });
    }

    // The certificate: who, why, every step in order with counts, the verified backup with checksums, a clean residue check.
    expect(certificate).toMatchObject({
      orgId: target,
      status: 'completed',
      requestedBy: 'jest',
      reason: 'integration test',
      workflowId: `delete-org-${target}`,
    });
    expect(certificate.steps.map((s) => s.step)).toEqual([
      'queue',
      'redis',
      'clickhouse',
      'postgres-schemas',
      'postgres-shared-rows',
    ]);
    expect(certificate.removed.queue.messages).toBeGreaterThan(0);
    expect(certificate.removed.redis.keys).toBeGreaterThan(0);
    expect(certificate.removed.clickhouse.rows).toBeGreaterThan(0);
    expect(certificate.removed.postgres.schemas).toBe(2);
    expect(certificate.removed.postgres['public.organizations']).toBe(1);
    expect(certificate.removed.postgres['public.users']).toBeGreaterThan(0);
    expect(certificate.residueCheck).toMatchObject({ clean: true, found: [] });
    expect(certificate.foundAtPointOfNoReturn.length).toBeGreaterThan(0);
    if (certificate.backup.skipped) throw new Error('the backup must not be skipped');
    // verifyBackup restored it into scratch databases and compared fingerprints before anything was deleted.
    expect(certificate.backup.verified).toBe(true);
    expect(certificate.backup.artifacts.length).toBeGreaterThan(0);
    for (const a of certificate.backup.artifacts) expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await backupsOf(target)).toEqual([certificate.backup.backupId]);
    // The pre-deletion backup is held, so pruning never removes it during the retention.
    await expect(
      stat(path.join(env.config.backup.directory, target, certificate.backup.backupId, 'hold.json')),
    ).resolves.toBeDefined();

    // Recorded in the operations table and in the deletion log beside the backups.
    const row = await env.clients.postgres.query<{ status: string; certificate: DeletionCertificate }>(
      'SELECT status, certificate FROM eloquent_ops.deletion_certificates WHERE run_id = $1',
      [certificate.runId],
    );
    expect(row.rows[0]?.status).toBe('completed');
    expect(row.rows[0]?.certificate.removed).toEqual(certificate.removed);
    const log = await readDeletionLog(createFilesystemBackupStore(env.config.backup), target);
    expect(deletionInEffect(log)?.runId).toBe(certificate.runId);

    // The status query still answers after the end.
    const status = await handle.query<{ step: string; purge: Record<string, { state: string }> }>('deletionStatus');
    expect(status.step).toBe('done');
    expect(Object.values(status.purge).every((p) => p.state === 'done')).toBe(true);
  });

  it('a cancel during the grace period puts the organization back exactly as it was, sessions aside', async () => {
    const orgId = await seeded(uniqueOrgId('dlc'), 'cancel');
    const before = await fingerprintOrganization(env.clients, orgId);
    expect(before.objects.filter((o) => isSessionObject(o.object)).some((o) => o.rows > 0)).toBe(true);
    expect(await organizationStatus(orgId)).toBe('active');

    const handle = await startOrganizationDeletion(env.client, request(orgId, { gracePeriod: '10m' }), {
      taskQueue: env.taskQueue,
    });
    workflows.push(handle.workflowId);
    const grace = await waitForDeletionStatus(env.client, handle.workflowId, (s) => s.step === 'grace-period');
    // The run reports when the grace period ends; the caller subtracts (a query's clock stands still).
    expect(Date.parse(grace.gracePeriodEndsAt ?? '')).toBeGreaterThan(Date.now() + 9 * 60_000);
    expect(graceTimeLeftMs(grace)).toBeGreaterThan(9 * 60_000);
    expect(graceTimeLeftMs(grace, Date.parse(grace.gracePeriodEndsAt ?? '') + 1)).toBe(0);
    expect(grace.backupId).toBeDefined();
    // During the grace period the organization is marked and its users are logged out.
    expect(await organizationStatus(orgId)).toBe('deleting');
    const during = await fingerprintOrganization(env.clients, orgId);
    expect(during.objects.filter((o) => isSessionObject(o.object)).every((o) => o.rows === 0)).toBe(true);

    await cancelOrganizationDeletion(env.client, orgId, { by: 'jest', reason: 'customer renewed' });
    const result = await handle.result();
    expect(result).toMatchObject({
      outcome: 'cancelled',
      orgId,
      restoredStatus: 'active',
      cancelled: { by: 'jest', reason: 'customer renewed' },
    });
    expect(await organizationStatus(orgId)).toBe('active');
    const after = await fingerprintOrganization(env.clients, orgId);
    const withoutSessions = (fp: OrganizationFingerprint) => ({
      ...fp,
      objects: fp.objects.filter((o) => !isSessionObject(o.object)),
    });
    expect(compareFingerprints(withoutSessions(before), withoutSessions(after)).differences).toEqual([]);
    // No hold is left on the backup taken for the cancelled deletion: pruning treats it like any other.
    await expect(
      stat(path.join(env.config.backup.directory, orgId, grace.backupId ?? '', 'hold.json')),
    ).rejects.toThrow(/ENOENT/);
    // No deletion record: a restore of this organization is not refused.
    expect(
      deletionInEffect(await readDeletionLog(createFilesystemBackupStore(env.config.backup), orgId)),
    ).toBeUndefined();
  });

  it('refuses a wrong confirmOrgId, an unknown organization and a second concurrent deletion, changing nothing', async () => {
    const orgId = await seeded(uniqueOrgId('dlr'), 'refuse');
    const before = await fingerprintOrganization(env.clients, orgId);

    const wrong = await rejectionOf(
      startOrganizationDeletion(
        env.client,
        { ...request(orgId), confirmOrgId: `${orgId}x` },
        { taskQueue: env.taskQueue },
      ).then((h) => h.result()),
    );
    expect(wrong).toBeInstanceOf(WorkflowFailedError);
    expect(failureText(wrong)).toMatch(
      new RegExp(`confirmOrgId: "${orgId}x" does not match orgId "${orgId}"; nothing was changed`),
    );

    const ghost = uniqueOrgId('ghost');
    const unknown = await rejectionOf(
      startOrganizationDeletion(env.client, request(ghost), { taskQueue: env.taskQueue }).then((h) => h.result()),
    );
    expect(failureText(unknown)).toMatch(new RegExp(`organization "${ghost}" does not exist`));
    expect(failureText(unknown)).toMatch(/no data was deleted/);

    // The first deletion waits in its grace period; the second start is refused by the workflow id.
    const first = await startOrganizationDeletion(env.client, request(orgId, { gracePeriod: '10m' }), {
      taskQueue: env.taskQueue,
    });
    workflows.push(first.workflowId);
    await waitForDeletionStatus(env.client, first.workflowId, (s) => s.step === 'grace-period');
    const second = await rejectionOf(
      startOrganizationDeletion(env.client, request(orgId), { taskQueue: env.taskQueue }),
    );
    expect(second).toBeInstanceOf(DeletionAlreadyRunningError);
    expect((second as Error).message).toBe(`already running: delete-org-${orgId}`);
    // Started by hand (the UI) under another id, it is refused before any change, naming the rule.
    const byHand = await rejectionOf(
      env.client.workflow.execute(deleteOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `delete-org-${orgId}-by-hand`,
        args: [request(orgId)],
      }),
    );
    expect(failureText(byHand)).toMatch(new RegExp(`workflow id: expected "delete-org-${orgId}"`));
    await cancelOrganizationDeletion(env.client, orgId, { by: 'jest', reason: 'end of test' });
    expect((await first.result()).outcome).toBe('cancelled');

    const after = await fingerprintWithoutSessions(env.clients, orgId);
    const beforeWithoutSessions = { ...before, objects: before.objects.filter((o) => !isSessionObject(o.object)) };
    expect(compareFingerprints(beforeWithoutSessions, after).differences).toEqual([]);
    expect(await organizationStatus(orgId)).toBe('active');
    // The refused runs took no backup: only the cancelled deletion's one exists.
    expect((await backupsOf(orgId)).length).toBe(1);
    expect((await backupsOf(ghost)).length).toBe(0);
  });

  it('reapplyDeletions deletes again an organization a platform restore brought back, and rewrites its certificate', async () => {
    const orgId = await seeded(uniqueOrgId('dla'), 'reapply');
    const handle = await startOrganizationDeletion(
      env.client,
      request(orgId, { skipBackup: true, reason: 'no data worth keeping' }),
      { taskQueue: env.taskQueue },
    );
    workflows.push(handle.workflowId);
    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error('expected a deletion');
    workflows.push(result.certificate.retention.shredWorkflowId);
    expect(result.certificate.backup).toEqual({ skipped: true, reason: 'no data worth keeping' });

    // What `psql < full_backup.sql` of an older dump does: the organization is back and the
    // operations table no longer holds its certificate.
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'reapply' });
    await env.clients.postgres.query('DELETE FROM eloquent_ops.deletion_certificates WHERE org_id = $1', [orgId]);
    expect((await describeOrganization(env.clients, orgId)).exists).toBe(true);

    const dry = await reapplyDeletions(env.client, { requestedBy: 'jest', dryRun: true }, { taskQueue: env.taskQueue });
    expect(dry.reapplied.map((r) => r.orgId)).toContain(orgId);
    expect((await describeOrganization(env.clients, orgId)).exists).toBe(true);

    const reapplied = await reapplyDeletions(env.client, { requestedBy: 'jest' }, { taskQueue: env.taskQueue });
    const entry = reapplied.reapplied.find((r) => r.orgId === orgId);
    expect(entry).toMatchObject({ result: 'deleted' });
    expect(entry?.found.length).toBeGreaterThan(0);
    expect(reapplied.certificatesResynced).toBeGreaterThanOrEqual(1);
    expect((await describeOrganization(env.clients, orgId)).exists).toBe(false);

    const rows = await env.clients.postgres.query<{ run_id: string; certificate: DeletionCertificate }>(
      'SELECT run_id, certificate FROM eloquent_ops.deletion_certificates WHERE org_id = $1 ORDER BY point_of_no_return_at',
      [orgId],
    );
    expect(rows.rows.map((r) => r.run_id)[0]).toBe(result.certificate.runId);
    const again = rows.rows[1]?.certificate;
    expect(again).toMatchObject({
      status: 'completed',
      reason: 'reapplying a recorded deletion',
      reappliedDeletionRunId: result.certificate.runId,
      backup: { skipped: true },
    });
    if (again) workflows.push(again.retention.shredWorkflowId);
    const logText = await readFile(
      path.join(env.config.backup.directory, '_deletions', orgId, 'deletion-log.json'),
      'utf8',
    );
    expect(JSON.parse(logText).deletions).toHaveLength(2);
  });
  it('after a deletion, restoring the pre-deletion backup is refused without an override and, with one, brings the organization back with its original fingerprint', async () => {
    const orgId = await seeded(uniqueOrgId('dlx'), 'restore');
    const durable = ['postgres', 'clickhouse'] as const;
    const before = await fingerprintOrganization(env.clients, orgId, [...durable]);
    // The retention ends soon after the restore: the override must keep the shredding away.
    const handle = await startOrganizationDeletion(env.client, request(orgId, { backupRetention: '40s' }), {
      taskQueue: env.taskQueue,
    });
    workflows.push(handle.workflowId);
    const result = await handle.result();
    if (result.outcome !== 'deleted' || result.certificate.backup.skipped)
      throw new Error('expected a deletion with a backup');
    workflows.push(result.certificate.retention.shredWorkflowId);
    const backupId = result.certificate.backup.backupId;
    expect((await describeOrganization(env.clients, orgId)).exists).toBe(false);

    const refused = await rejectionOf(
      env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `restore-${orgId}-${Date.now()}`,
        args: [{ backupId, orgId, mode: 'into-empty' }],
      }),
    );
    expect(failureText(refused)).toMatch(
      new RegExp(`organization ${orgId} was deleted by delete-org-${orgId}.*needs "override"`),
    );
    expect((await describeOrganization(env.clients, orgId)).exists).toBe(false);

    // An operator brings it back from the CLI (through the SDK), giving the reason that is recorded.
    const io = captureIo();
    const code = await runCli(
      [
        'restore',
        backupId,
        '--org',
        orgId,
        '--override-deletion',
        'deleted by mistake',
        '--task-queue',
        env.taskQueue,
        '--json',
      ],
      io,
    );
    expect(code).toBe(0);
    expect(io.err).not.toMatch(/error|refused/i);
    expect(JSON.parse(io.out)).toMatchObject({ ok: true, result: { targetOrgId: orgId } });
    // The deletion no longer holds its backup: pruning treats it like any other again.
    await expect(stat(path.join(env.config.backup.directory, orgId, backupId, 'hold.json'))).rejects.toThrow(/ENOENT/);
    const after = await fingerprintOrganization(env.clients, orgId, [...durable]);
    expect(compareFingerprints(before, after).differences).toEqual([]);
    expect(await organizationStatus(orgId)).toBe('active');

    // The override is recorded; the deletion is no longer in effect, so the retention's end keeps the backups.
    const log = await readDeletionLog(createFilesystemBackupStore(env.config.backup), orgId);
    expect(log.overrides).toEqual([
      expect.objectContaining({ reason: 'deleted by mistake', deletionRunId: result.certificate.runId }),
    ]);
    expect(deletionInEffect(log)).toBeUndefined();
    const shred = await env.client.workflow.getHandle(result.certificate.retention.shredWorkflowId).result();
    expect(shred).toMatchObject({ removedBackups: [], destroyedKeyIds: [] });
    expect(String((shred as { skipped?: string }).skipped)).toMatch(/a restore overrode the deletion/);
    expect(await backupsOf(orgId)).toContain(backupId);
  }, 180_000);
});
