import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { WorkflowFailedError } from '@temporalio/client';
import { backupManifestSchema } from '../src/contracts/backup';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { backupOrganization } from '../src/workflows';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

const run = promisify(execFile);

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function readArtifact(env: TestWorker, orgId: string, backupId: string, file: string): Promise<Buffer> {
  const store = createFilesystemBackupStore(env.config.backup);
  const chunks: Buffer[] = [];
  for await (const chunk of await store.openArtifactReader({ orgId, backupId, path: file }))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('backupOrganization', () => {
  let env: TestWorker;
  const orgA = uniqueOrgId('bka');
  const orgB = uniqueOrgId('bkb');

  beforeAll(async () => {
    env = await startTestWorker('backup');
    await seedOrganization(env.clients, orgA, { scale: 'small', seed: 'a' });
    await seedOrganization(env.clients, orgB, { scale: 'small', seed: 'b' });
  });
  afterAll(async () => {
    if (env) {
      await dropSeededOrganization(env.clients, orgA).catch(() => undefined);
      await dropSeededOrganization(env.clients, orgB).catch(() => undefined);
      await rm(path.join(env.config.backup.directory, orgA), { recursive: true, force: true });
      await rm(path.join(env.config.backup.directory, orgB), { recursive: true, force: true });
      await env.shutdown();
    }
  });

  it('writes every row of A and no byte of B, with a manifest whose checksums match the files', async () => {
    const summary = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgA}-${Date.now()}`,
      args: [{ orgId: orgA, reason: 'test', verify: false }],
    });
    expect(summary.orgId).toBe(orgA);
    const backupDir = path.join(env.config.backup.directory, orgA, summary.backupId);
    const manifest = backupManifestSchema.parse(
      JSON.parse(
        (await import('node:fs/promises').then((fs) => fs.readFile(path.join(backupDir, 'manifest.json')))).toString(),
      ),
    );
    expect(manifest.orgId).toBe(orgA);
    expect(manifest.serverVersions.postgres).toMatch(/^15\./);
    expect(manifest.serverVersions.clickhouse).toMatch(/^\d+\./);

    // Checksums in the manifest are those of the files on disk.
    for (const artifact of manifest.artifacts) {
      expect(await sha256OfFile(path.join(backupDir, artifact.file))).toBe(artifact.sha256);
    }
    // No temporary files are left.
    const all = await readdir(backupDir, { recursive: true });
    expect(all.filter((f) => /\.tmp-/.test(f))).toEqual([]);

    // Shared rows: every row of A (counts equal the fingerprint taken in the same snapshot), none of B.
    for (const artifact of manifest.artifacts.filter((a) => a.object.startsWith('shared:'))) {
      const text = (await readArtifact(env, orgA, summary.backupId, artifact.file)).toString('utf8');
      const lines = text.split('\n').filter((l) => l.length > 0);
      expect(lines.length).toBe(artifact.rows);
      const fingerprint = manifest.fingerprint.objects.find((o) => o.object === artifact.object);
      expect(fingerprint?.rows).toBe(artifact.rows);
      expect(lines.length).toBeGreaterThan(0);
      expect(text).not.toContain(orgB);
      const keyIndex =
        artifact.columns?.indexOf(artifact.object === 'shared:public.organizations' ? 'id' : 'org_id') ?? -1;
      for (const line of lines) expect(line.split('\t')[keyIndex]).toBe(orgA);
    }

    // The schema dump holds A's schemas only (pg_restore --list reads the archive's table of contents);
    // it is stored in zstd, so an operator reads it with `zstd -dc schemas.dump | pg_restore --list`
    // (no pipefail: pg_restore stops after the table of contents, and zstd then dies of SIGPIPE).
    const dump = manifest.artifacts.find((a) => a.object === 'schemas');
    expect(dump?.compression).toBe('zstd');
    const { stdout: toc } = await run('bash', [
      '-c',
      'zstd -dc "$1" | pg_restore --list',
      'bash',
      path.join(backupDir, dump?.file ?? ''),
    ]);
    expect(toc).toContain(`org_${orgA}`);
    expect(toc).not.toContain(orgB);

    // ClickHouse: a DDL and a data artifact per table of A's database, rows as counted by the server.
    const chData = manifest.artifacts.filter((a) => a.object.startsWith('clickhouse:'));
    expect(chData.length).toBeGreaterThanOrEqual(4);
    for (const artifact of chData) {
      const ddl = (
        await readArtifact(env, orgA, summary.backupId, artifact.file.replace(/\.native$/, '.sql'))
      ).toString();
      expect(ddl).toContain(`org_${orgA}`);
      expect(ddl).not.toContain(orgB);
      const fingerprint = manifest.fingerprint.objects.find((o) => o.object === artifact.object);
      expect(fingerprint?.rows).toBe(artifact.rows);
    }
    // Ephemeral stores are counted, not backed up.
    expect(manifest.ephemeral.queue.reduce((n, s) => n + s.messages, 0)).toBeGreaterThan(0);
    expect(manifest.ephemeral.redis.reduce((n, s) => n + s.keys, 0)).toBeGreaterThan(0);
    expect(manifest.artifacts.some((a) => a.file.includes('queue') || a.file.includes('redis'))).toBe(false);
  });

  it('refuses an unknown organization at once and writes nothing', async () => {
    const ghost = uniqueOrgId('ghost');
    const started = Date.now();
    const failure = await rejectionOf(
      env.client.workflow.execute(backupOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `backup-${ghost}-${Date.now()}`,
        args: [{ orgId: ghost, verify: false }],
      }),
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(failureText(failure)).toMatch(new RegExp(`organization "${ghost}" does not exist`));
    expect(Date.now() - started).toBeLessThan(20_000);
    await expect(readdir(path.join(env.config.backup.directory, ghost))).rejects.toThrow(/ENOENT/);
  });

  it('rejects an invalid organization id, quoting the rule', async () => {
    const failure = await rejectionOf(
      env.client.workflow.execute(backupOrganization, {
        taskQueue: env.taskQueue,
        workflowId: `backup-invalid-${Date.now()}`,
        args: [{ orgId: 'Org-1' }],
      }),
    );
    expect(failureText(failure)).toMatch(/"Org-1".*lower-case letters/);
  });
});
