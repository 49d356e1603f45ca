import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { backupManifestSchema } from '../src/contracts/backup';
import { fingerprintOrganization } from '../src/platform/fingerprint';
import { compareObjectFingerprints } from '../src/platform/fingerprint-compare';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { readBlob } from '../src/storage/blob-store';
import { backupOrganization, restoreOrganization, verifyBackup } from '../src/workflows';
import { localS3Blobs, localS3Env, removeLocalS3Prefix } from './support/local-s3';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * The core workflows on the S3-compatible store (BACKUP_STORE=s3, the gofakes3 server of
 * `scripts/stack.sh up s3`): every object lands in the bucket, none on the worker's disk, and what
 * verification and restore read back comes from the bucket. The rest of the core workflows on S3
 * (replace, damaged backups, listing and pruning through the worker, deletion and shredding) are
 * in test/core-workflows-s3.test.ts.
 */
describe('the backup store on S3', () => {
  let env: TestWorker;
  let backupDir: string;
  const s3Env = localS3Env('roundtrip');
  const blobs = localS3Blobs(s3Env);
  const orgId = uniqueOrgId('s3rt');

  beforeAll(async () => {
    backupDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-s3-backup-dir-'));
    env = await startTestWorker('s3-roundtrip', { ...s3Env, BACKUP_DIR: backupDir });
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 's3' });
  });
  afterAll(async () => {
    if (env) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
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
});
