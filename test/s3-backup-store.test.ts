import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { deletionInEffect, readDeletionLog } from '../src/activities/cross-store/deletion-log';
import { startOrganizationDeletion } from '../src/client/deletion';
import { backupManifestSchema } from '../src/contracts/backup';
import { fingerprintOrganization } from '../src/platform/fingerprint';
import { compareObjectFingerprints } from '../src/platform/fingerprint-compare';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { readBlob } from '../src/storage/blob-store';
import { createBackupStore } from '../src/storage/configured-backup-store';
import { backupOrganization, restoreOrganization, verifyBackup } from '../src/workflows';
import { removeDeletionArtifacts, terminateIfRunning } from './support/deletion';
import { localS3Blobs, localS3Env, removeLocalS3Prefix } from './support/local-s3';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * The core workflows on the S3-compatible store (BACKUP_STORE=s3, the gofakes3 server of
 * `scripts/stack.sh up s3`): every object lands in the bucket, none on the worker's disk, and what
 * verification and restore read back comes from the bucket.
 */
describe('the backup store on S3', () => {
  let env: TestWorker;
  let backupDir: string;
  const s3Env = localS3Env('roundtrip');
  const blobs = localS3Blobs(s3Env);
  const orgId = uniqueOrgId('s3rt');
  const deleted = uniqueOrgId('s3dl');
  const workflows: string[] = [];

  beforeAll(async () => {
    backupDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-s3-backup-dir-'));
    env = await startTestWorker('s3-roundtrip', { ...s3Env, BACKUP_DIR: backupDir });
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 's3' });
  });
  afterAll(async () => {
    if (env) {
      for (const id of workflows) await terminateIfRunning(env.client, id);
      for (const org of [orgId, deleted]) await dropSeededOrganization(env.clients, org).catch(() => undefined);
      await removeDeletionArtifacts(env.clients, backupDir, deleted);
      await env.shutdown();
    }
    await removeLocalS3Prefix(s3Env);
    if (backupDir) await rm(backupDir, { recursive: true, force: true });
  });

  it('backupOrganization → verifyBackup → restoreOrganization round-trips every row through the bucket, and nothing lands on disk', async () => {
    expect(env.config.backup.store).toBe('s3');
    const backup = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 's3 round trip', verify: false }],
    });

    // The manifest and every artifact are objects of the bucket, and their bytes are what the manifest says.
    const prefix = `${orgId}/${backup.backupId}/`;
    const manifestBytes = await readBlob(blobs, `${prefix}manifest.json`);
    expect(manifestBytes).toBeDefined();
    const manifest = backupManifestSchema.parse(JSON.parse(manifestBytes?.toString('utf8') ?? ''));
    expect(manifest.artifacts.length).toBeGreaterThan(4);
    const keys = await blobs.list(prefix);
    for (const artifact of manifest.artifacts) {
      expect(keys).toContain(`${prefix}${artifact.file}`);
      const stored = await readBlob(blobs, `${prefix}${artifact.file}`);
      expect({
        file: artifact.file,
        sha256: createHash('sha256')
          .update(stored ?? Buffer.alloc(0))
          .digest('hex'),
      }).toEqual({ file: artifact.file, sha256: artifact.sha256 });
    }
    expect(await blobs.listUnfinished(`${orgId}/`)).toEqual([]);
    expect(await readdir(backupDir)).toEqual([]);

    const report = await env.client.workflow.execute(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-${backup.backupId}`,
      args: [{ backupId: backup.backupId, orgId }],
    });
    expect(report.result).toBe('passed');
    expect(report.comparisons.length).toBeGreaterThan(8);
    expect(await blobs.stat(`${prefix}verification.json`)).toBeDefined();

    const before = await fingerprintOrganization(env.clients, orgId, ['postgres', 'clickhouse']);
    await dropSeededOrganization(env.clients, orgId);
    expect(
      (await fingerprintOrganization(env.clients, orgId, ['postgres', 'clickhouse'])).objects.filter((o) => o.rows > 0),
    ).toEqual([]);
    const restored = await env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${orgId}-${Date.now()}`,
      args: [{ backupId: backup.backupId, orgId }],
    });
    expect(restored.comparisons.length).toBeGreaterThan(8);
    expect(restored.comparisons.filter((c) => !c.equal)).toEqual([]);
    const after = await fingerprintOrganization(env.clients, orgId, ['postgres', 'clickhouse']);
    expect(compareObjectFingerprints(before.objects, after.objects).filter((c) => !c.equal)).toEqual([]);
    expect(await readdir(backupDir)).toEqual([]);
  });

  it('deleteOrganization backs up and verifies into the bucket before deleting, and records its certificate there', async () => {
    await seedOrganization(env.clients, deleted, { scale: 'small', seed: 's3-deletion' });
    const handle = await startOrganizationDeletion(
      env.client,
      {
        orgId: deleted,
        confirmOrgId: deleted,
        requestedBy: 'jest',
        reason: 's3 deletion test',
        gracePeriod: '0s',
        backupRetention: '1h',
        storeDownAfter: '30s',
      },
      { taskQueue: env.taskQueue },
    );
    workflows.push(handle.workflowId);
    const result = await handle.result();
    if (result.outcome !== 'deleted') throw new Error(`expected a deletion, got ${JSON.stringify(result)}`);
    workflows.push(result.certificate.retention.shredWorkflowId);
    expect((await fingerprintOrganization(env.clients, deleted)).objects.filter((o) => o.rows > 0)).toEqual([]);
    if (result.certificate.backup.skipped) throw new Error('the backup must not be skipped');
    expect(result.certificate.backup.verified).toBe(true);

    // The pre-deletion backup, its hold and the deletion log are objects of the bucket, read back through the S3 store.
    const { backupId } = result.certificate.backup;
    const store = createBackupStore(env.config.backup);
    expect(
      (await store.listBackups(deleted)).map((b) => ({
        backupId: b.backupId,
        complete: b.complete,
        verified: b.verified,
      })),
    ).toEqual([{ backupId, complete: true, verified: true }]);
    expect(await blobs.stat(`${deleted}/${backupId}/hold.json`)).toBeDefined();
    expect(deletionInEffect(await readDeletionLog(store, deleted))?.runId).toBe(result.certificate.runId);
    expect(await readdir(backupDir)).toEqual([]);
  });
});
