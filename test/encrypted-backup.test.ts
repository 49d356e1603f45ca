import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { backupManifestSchema } from '../src/contracts/backup';
import { fingerprintOrganization } from '../src/platform/fingerprint';
import { compareObjectFingerprints } from '../src/platform/fingerprint-compare';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { backupOrganization, restoreOrganization } from '../src/workflows';
import { failureText, rejectionOf } from './support/failures';
import { REPO_ROOT } from './support/paths';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

const run = promisify(execFile);

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('encrypted backups (per-organization data keys under a master key)', () => {
  const oldKey = randomBytes(32).toString('base64');
  const newKey = randomBytes(32).toString('base64');
  const orgId = uniqueOrgId('enc');
  const clone = uniqueOrgId('encc');
  let directory: string;
  let env: TestWorker;

  beforeAll(async () => {
    directory = await mkdtemp(path.join(tmpdir(), 'eloquent-encrypted-'));
    env = await startTestWorker('encrypted', { BACKUP_MASTER_KEY: oldKey, BACKUP_DIR: directory });
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'encrypted' });
  });
  afterAll(async () => {
    if (env) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await dropSeededOrganization(env.clients, clone).catch(() => undefined);
      await env.shutdown();
    }
    await rm(directory, { recursive: true, force: true });
  });

  it('cannot be read without its key, reads back exactly with it, and still restores after the master key is rotated', async () => {
    const summary = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'encryption test', verify: false }],
    });
    const manifest = backupManifestSchema.parse(
      JSON.parse(await readFile(path.join(directory, orgId, summary.backupId, 'manifest.json'), 'utf8')),
    );
    expect(manifest.keyId).toMatch(/^dk_/);
    expect(manifest.artifacts.every((a) => a.encrypted && a.keyId === manifest.keyId)).toBe(true);

    // The stored users rows hold the organization id in clear text before encryption; the file must not.
    const users = manifest.artifacts.find((a) => a.object === 'shared:public.users');
    expect(users).toBeDefined();
    const stored = await readFile(path.join(directory, orgId, summary.backupId, users?.file ?? ''));
    expect(stored.includes(Buffer.from(orgId))).toBe(false);

    // With the key: exactly the rows the manifest counted, all of this organization.
    const withKey = createFilesystemBackupStore({ directory, masterKeyBase64: oldKey });
    const text = (
      await readAll(await withKey.openArtifactReader({ orgId, backupId: summary.backupId, path: users?.file ?? '' }))
    ).toString('utf8');
    const lines = text.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(users?.rows ?? -1);
    expect(lines.every((l) => l.startsWith(`${orgId}\t`))).toBe(true);

    // Without a key, or with another master key: a clear error, never bytes.
    const noKey = createFilesystemBackupStore({ directory, masterKeyBase64: undefined });
    await expect(
      noKey.openArtifactReader({ orgId, backupId: summary.backupId, path: users?.file ?? '' }),
    ).rejects.toThrow(/master key|BACKUP_MASTER_KEY/i);
    const wrongKey = createFilesystemBackupStore({ directory, masterKeyBase64: newKey });
    await expect(
      wrongKey.openArtifactReader({ orgId, backupId: summary.backupId, path: users?.file ?? '' }),
    ).rejects.toThrow(/master key/i);
    // pg_restore cannot read the encrypted dump either.
    const dump = manifest.artifacts.find((a) => a.object === 'schemas');
    await expect(
      run('pg_restore', ['--list', path.join(directory, orgId, summary.backupId, dump?.file ?? '')]),
    ).rejects.toThrow();

    // Rotate the master key with the operator command: re-wraps data keys, touches no artifact.
    const before = await readFile(path.join(directory, orgId, summary.backupId, users?.file ?? ''));
    await run(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'scripts', 'keys.ts'), 'rotate'], {
      cwd: REPO_ROOT,
      env: { ...process.env, BACKUP_DIR: directory, BACKUP_MASTER_KEY: oldKey, NEW_BACKUP_MASTER_KEY: newKey },
    });
    expect(await readFile(path.join(directory, orgId, summary.backupId, users?.file ?? ''))).toEqual(before);
    await expect(
      withKey.openArtifactReader({ orgId, backupId: summary.backupId, path: users?.file ?? '' }),
    ).rejects.toThrow(/master key/i);

    // A worker with the new key restores the old backup (as a clone) to the original content.
    const rotated = await startTestWorker('encrypted-rotated', { BACKUP_MASTER_KEY: newKey, BACKUP_DIR: directory });
    try {
      const result = await rotated.client.workflow.execute(restoreOrganization, {
        taskQueue: rotated.taskQueue,
        workflowId: `restore-${clone}-${Date.now()}`,
        args: [{ backupId: summary.backupId, orgId, targetOrgId: clone }],
      });
      expect(result.comparisons.every((c) => c.equal)).toBe(true);
      const source = await fingerprintOrganization(env.clients, orgId, ['postgres', 'clickhouse']);
      const restored = await fingerprintOrganization(env.clients, clone, ['postgres', 'clickhouse']);
      expect(compareObjectFingerprints(source.objects, restored.objects).filter((c) => !c.equal)).toEqual([]);
    } finally {
      await rotated.shutdown();
    }

    // The old key no longer restores anything: a worker still configured with it fails clearly.
    const stale = await rejectionOf(
      env.client.workflow.execute(restoreOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `restore-${clone}-stale-${Date.now()}`,
        args: [{ backupId: summary.backupId, orgId, targetOrgId: clone, mode: 'replace' }],
      }),
    );
    expect(failureText(stale)).toMatch(/master key/i);
  });
});
