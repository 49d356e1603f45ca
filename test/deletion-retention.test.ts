import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readDeletionLog } from '../src/activities/cross-store/deletion-log';
import { startOrganizationDeletion } from '../src/client/deletion';
import type { DeletionCertificate } from '../src/contracts/deletion';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { removeDeletionArtifacts, terminateIfRunning } from './support/deletion';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

async function readAll(stream: AsyncIterable<unknown>): Promise<number> {
  let bytes = 0;
  for await (const chunk of stream) bytes += (chunk as Buffer).length;
  return bytes;
}

describe('deleteOrganization: retention of the pre-deletion backup', () => {
  let env: TestWorker;
  let backupDir: string;
  let asideDir: string;
  const orgId = uniqueOrgId('dlk');
  const workflows: string[] = [];

  beforeAll(async () => {
    backupDir = await mkdtemp(path.join(tmpdir(), 'eloquent-shred-'));
    asideDir = await mkdtemp(path.join(tmpdir(), 'eloquent-shred-copy-'));
    env = await startTestWorker('deletion-retention', {
      BACKUP_MASTER_KEY: randomBytes(32).toString('base64'),
      BACKUP_DIR: backupDir,
    });
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'shred' });
  });
  afterAll(async () => {
    if (!env) return;
    for (const id of workflows) await terminateIfRunning(env.client, id);
    await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
    await removeDeletionArtifacts(env.clients, backupDir, orgId);
    await env.shutdown();
    await rm(backupDir, { recursive: true, force: true });
    await rm(asideDir, { recursive: true, force: true });
  });

  it('after the retention ends the backups are gone and even a copy of them can no longer be decrypted', async () => {
    const handle = await startOrganizationDeletion(
      env.client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 'retention test',
        gracePeriod: '0s',
        backupRetention: '4s',
      },
      { taskQueue: env.taskQueue },
    );
    workflows.push(handle.workflowId);
    const result = await handle.result();
    if (result.outcome !== 'deleted' || result.certificate.backup.skipped)
      throw new Error(`expected a deletion with a backup, got ${JSON.stringify(result)}`);
    const { backupId, keyId, artifacts } = result.certificate.backup;
    workflows.push(result.certificate.retention.shredWorkflowId);
    expect(keyId).toMatch(/^dk_/);
    const store = createFilesystemBackupStore(env.config.backup);
    const encrypted = artifacts.find((a) => a.file.endsWith('.native')) ?? artifacts[0];
    if (!encrypted) throw new Error('the backup has no artifacts');

    // During the retention the backup is readable, and an operator (or a replica) copies it away.
    expect(await readAll(await store.openArtifactReader({ orgId, backupId, path: encrypted.file }))).toBeGreaterThan(0);
    await cp(path.join(backupDir, orgId, backupId), path.join(asideDir, backupId), { recursive: true });
    const keysBefore = await readFile(path.join(backupDir, orgId, 'keys.json'), 'utf8');
    const wrapped = (JSON.parse(keysBefore) as { dataKey: { wrapped: { ciphertext: string } } }).dataKey.wrapped
      .ciphertext;

    const shred = await env.client.workflow.getHandle(result.certificate.retention.shredWorkflowId).result();
    expect(shred).toMatchObject({ orgId, removedBackups: [backupId], destroyedKeyIds: [keyId] });

    // The backups are gone from the store.
    expect(await store.listBackups(orgId)).toEqual([]);
    // The copy, put back where the project looks for backups, cannot be read: its key is destroyed.
    await cp(path.join(asideDir, backupId), path.join(backupDir, orgId, backupId), { recursive: true });
    const refusal = await rejectionOf(
      store.openArtifactReader({ orgId, backupId, path: encrypted.file }).then(readAll),
    );
    expect(failureText(refusal)).toMatch(/destroyed/);
    // Not even the master key helps: the wrapped data key is no longer stored anywhere.
    const keysAfter = await readFile(path.join(backupDir, orgId, 'keys.json'), 'utf8');
    expect(keysAfter).not.toContain(wrapped);
    expect(JSON.parse(keysAfter)).toMatchObject({ dataKey: null, destroyed: [{ keyId }] });

    // The certificate says when, in the log and in the operations table.
    const logged = (await readDeletionLog(store, orgId)).deletions.find((d) => d.runId === result.certificate.runId);
    expect(logged?.retention.shreddedAt).toBeDefined();
    expect(logged?.retention.destroyedKeyIds).toEqual([keyId]);
    const row = await env.clients.postgres.query<{ shredded_at: Date | null; certificate: DeletionCertificate }>(
      'SELECT shredded_at, certificate FROM eloquent_ops.deletion_certificates WHERE run_id = $1',
      [result.certificate.runId],
    );
    expect(row.rows[0]?.shredded_at).toBeInstanceOf(Date);
    expect(row.rows[0]?.certificate.retention.removedBackups).toEqual([backupId]);
  });
});
