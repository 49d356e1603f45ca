import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backupManifestSchema } from '../src/contracts/backup';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { keysKey, SIDECAR_SUFFIX } from '../src/storage/backup-layout';
import { readBlob } from '../src/storage/blob-store';
import { createBackupStore } from '../src/storage/configured-backup-store';
import { backupOrganization, shredOrganizationBackups, verifyBackup } from '../src/workflows';
import { terminateIfRunning } from './support/deletion';
import { failureText, rejectionOf } from './support/failures';
import { localS3Blobs, localS3Env, removeLocalS3Prefix } from './support/local-s3';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

async function readAll(stream: AsyncIterable<unknown>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Encrypted backups with BACKUP_STORE=s3 and two workers that share the bucket and nothing else
 * (each has a BACKUP_DIR of its own): the data key is in the bucket, so what one worker backs up
 * the other verifies, and shredding on either makes every copy of the backup unreadable.
 */
describe('encrypted backups on S3 with more than one worker', () => {
  const masterKey = randomBytes(32).toString('base64');
  const s3Env = localS3Env('encrypted');
  const blobs = localS3Blobs(s3Env);
  const orgId = uniqueOrgId('encs3');
  const dirs: string[] = [];
  const workflows: string[] = [];
  let workerA: TestWorker;
  let workerB: TestWorker;

  beforeAll(async () => {
    for (let i = 0; i < 2; i++) dirs.push(await mkdtemp(path.join(tmpdir(), 'eloquent-encrypted-s3-')));
    workerA = await startTestWorker('enc-s3-a', { ...s3Env, BACKUP_MASTER_KEY: masterKey, BACKUP_DIR: dirs[0] });
    workerB = await startTestWorker('enc-s3-b', { ...s3Env, BACKUP_MASTER_KEY: masterKey, BACKUP_DIR: dirs[1] });
    await seedOrganization(workerA.clients, orgId, { scale: 'small', seed: 'encrypted-s3' });
  });
  afterAll(async () => {
    if (workerA) {
      for (const id of workflows) await terminateIfRunning(workerA.client, id);
      await dropSeededOrganization(workerA.clients, orgId).catch(() => undefined);
      await workerA.shutdown();
    }
    if (workerB) await workerB.shutdown();
    await removeLocalS3Prefix(s3Env);
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it("one worker's encrypted backup is verified by another, and shredding makes even a copy of it unreadable", async () => {
    const backupWorkflowId = `backup-${orgId}-${Date.now()}`;
    workflows.push(backupWorkflowId);
    const summary = await workerA.client.workflow.execute(backupOrganization, {
      taskQueue: workerA.taskQueue,
      workflowId: backupWorkflowId,
      args: [{ orgId, reason: 'encrypted s3 test', verify: false }],
    });
    const prefix = `${orgId}/${summary.backupId}/`;
    const manifest = backupManifestSchema.parse(
      JSON.parse((await readBlob(blobs, `${prefix}manifest.json`))?.toString('utf8') ?? ''),
    );
    expect(manifest.keyId).toMatch(/^dk_/);
    expect(manifest.artifacts.every((a) => a.encrypted && a.keyId === manifest.keyId)).toBe(true);
    expect(await blobs.stat(keysKey(orgId))).toBeDefined();

    // Worker B never saw the backup being made and has no file of worker A: it reads the key from the bucket.
    const verifyWorkflowId = `verify-${summary.backupId}`;
    workflows.push(verifyWorkflowId);
    const report = await workerB.client.workflow.execute(verifyBackup, {
      taskQueue: workerB.taskQueue,
      workflowId: verifyWorkflowId,
      args: [{ backupId: summary.backupId, orgId }],
    });
    expect(report.result).toBe('passed');
    for (const dir of dirs) expect(await readdir(dir)).toEqual([]);

    // A copy of one artifact and its sidecar, as a replica of the bucket would keep it.
    const artifact = manifest.artifacts.find((a) => a.file.endsWith('.native')) ?? manifest.artifacts[0];
    if (!artifact) throw new Error('the backup has no artifacts');
    const copies = new Map<string, Buffer>();
    for (const key of [`${prefix}${artifact.file}`, `${prefix}${artifact.file}${SIDECAR_SUFFIX}`]) {
      copies.set(key, (await readBlob(blobs, key)) ?? Buffer.alloc(0));
    }
    const keysBefore = (await readBlob(blobs, keysKey(orgId)))?.toString('utf8') ?? '';
    const wrapped = (JSON.parse(keysBefore) as { dataKey: { wrapped: { ciphertext: string } } }).dataKey.wrapped
      .ciphertext;

    const shredWorkflowId = `shred-${orgId}-${Date.now()}`;
    workflows.push(shredWorkflowId);
    const shred = await workerB.client.workflow.execute(shredOrganizationBackups, {
      taskQueue: workerB.taskQueue,
      workflowId: shredWorkflowId,
      args: [{ orgId, deletionRunId: 'encrypted-s3-test', retention: '0s' }],
    });
    expect(shred).toMatchObject({ removedBackups: [summary.backupId], destroyedKeyIds: [manifest.keyId] });

    // The copy, put back into the bucket, cannot be read by worker A: the key is gone from the bucket.
    for (const [key, content] of copies) await blobs.put(key, content, { store: 'storage' });
    const refusal = await rejectionOf(
      createBackupStore(workerA.config.backup)
        .openArtifactReader({ orgId, backupId: summary.backupId, path: artifact.file })
        .then(readAll),
    );
    expect(failureText(refusal)).toMatch(/destroyed \(crypto-shredded\)/);
    const keysAfter = (await readBlob(blobs, keysKey(orgId)))?.toString('utf8') ?? '';
    expect(keysAfter).not.toContain(wrapped);
    expect(JSON.parse(keysAfter)).toMatchObject({ dataKey: null, destroyed: [{ keyId: manifest.keyId }] });
  });
});
