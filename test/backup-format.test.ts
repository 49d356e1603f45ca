import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pgTool } from '../src/activities/postgres/tools';
import { backupManifestSchema, type BackupManifest } from '../src/contracts/backup';
import { organizationDataMap } from '../src/platform/data-map';
import { listOrgSchemas } from '../src/platform/discovery';
import { seedOrganization } from '../src/platform/seed-organization';
import { writeArtifact } from '../src/storage/backup-store';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { backupOrganization, restoreOrganization, verifyBackup } from '../src/workflows';
import { dropTestOrganizations } from './support/organizations';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/** zstd's frame magic number, as the first bytes of the stored file. */
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** Runs a tool and returns its stdout; fails with its stderr. */
async function output(command: string, args: string[]): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${String(code)}: ${err}`);
  return out;
}

/**
 * The archive format of issue 17 (pg_dump --compress=0, stored in zstd, restored in parallel into
 * scratch) and the format before it (pg_dump's own gzip, stored as it came), each through backup →
 * verify → restore as a clone. A pg_restore that records its arguments (it execs the real one) shows
 * how verification ran it.
 */
describe('the PostgreSQL archive format', () => {
  let env: TestWorker;
  let toolDir: string;
  const source = uniqueOrgId('fmt');
  const clones = [uniqueOrgId('fmtn'), uniqueOrgId('fmto')];

  beforeAll(async () => {
    toolDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-pg-tools-'));
    const real = (tool: 'pg_dump' | 'pg_restore' | 'psql' | 'pg_dumpall') =>
      output('sh', ['-c', `command -v ${pgTool(process.env.POSTGRES_BIN_DIR ?? '', tool)}`]).then((p) => p.trim());
    for (const tool of ['pg_dump', 'psql', 'pg_dumpall'] as const)
      await symlink(await real(tool), path.join(toolDir, tool));
    const wrapper = path.join(toolDir, 'pg_restore');
    await writeFile(
      wrapper,
      `#!/bin/sh\nprintf '%s\\n' "$*" >> ${JSON.stringify(path.join(toolDir, 'calls.log'))}\nexec ${JSON.stringify(await real('pg_restore'))} "$@"\n`,
    );
    await chmod(wrapper, 0o755);
    env = await startTestWorker('format', { POSTGRES_BIN_DIR: toolDir, POSTGRES_RESTORE_JOBS: '2' });
    await seedOrganization(env.clients, source, { scale: 'small', seed: 'format' });
  });
  afterAll(async () => {
    if (env) {
      await dropTestOrganizations(env, [source, ...clones]);
      await env.shutdown();
    }
    if (toolDir) await rm(toolDir, { recursive: true, force: true });
  });

  const backupDir = (backupId: string) => path.join(env.config.backup.directory, source, backupId);
  const readManifest = async (backupId: string): Promise<BackupManifest> =>
    backupManifestSchema.parse(JSON.parse(await readFile(path.join(backupDir(backupId), 'manifest.json'), 'utf8')));
  const pgRestoreCalls = async () =>
    (await readFile(path.join(toolDir, 'calls.log'), 'utf8').catch(() => '')).split('\n');
  const backUp = () =>
    env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${source}-${Date.now()}`,
      args: [{ orgId: source, reason: 'format test', verify: false }],
    });
  const verify = (backupId: string) =>
    env.client.workflow.execute(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-${backupId}-${Date.now()}`,
      args: [{ backupId }],
    });
  const cloneAs = (backupId: string, targetOrgId: string) =>
    env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${targetOrgId}-${Date.now()}`,
      args: [{ backupId, orgId: source, targetOrgId, mode: 'into-empty' }],
    });

  it('a new backup holds an uncompressed custom archive in zstd, which verifies (pg_restore --jobs into scratch) and restores as a clone', async () => {
    const backup = await backUp();
    const manifest = await readManifest(backup.backupId);
    const dump = manifest.artifacts.find((a) => a.file === 'postgres/schemas.dump');
    expect(dump).toMatchObject({ compression: 'zstd', encrypted: false });
    const stored = await readFile(path.join(backupDir(backup.backupId), 'postgres', 'schemas.dump'));
    expect(stored.subarray(0, 4)).toEqual(ZSTD_MAGIC);
    // What the store hands pg_restore: a custom-format archive whose data pg_dump did not compress.
    const store = createFilesystemBackupStore(env.config.backup);
    const archive = path.join(toolDir, 'new.dump');
    await writeFile(
      archive,
      await readAllFrom(
        await store.openArtifactReader({ orgId: source, backupId: backup.backupId, path: dump?.file ?? '' }),
      ),
    );
    expect((await readFile(archive)).subarray(0, 5).toString('ascii')).toBe('PGDMP');
    expect(await output(pgTool(toolDir, 'pg_restore'), ['--list', archive])).toMatch(/^;\s+Compression: (0|none)\s*$/m);
    // Sequences were read back from the zstd artifact (archive-sequences.ts) into the fingerprint.
    expect(manifest.fingerprint.objects.some((o) => o.store === 'postgres' && o.object.startsWith('sequence:'))).toBe(
      true,
    );

    await writeFile(path.join(toolDir, 'calls.log'), '');
    const report = await verify(backup.backupId);
    expect(report.result).toBe('passed');
    expect(report.comparisons.every((c) => c.equal)).toBe(true);
    const parallel = (await pgRestoreCalls()).filter((line) => line.includes('--jobs=2'));
    expect(parallel).toHaveLength(1);
    expect(parallel[0]).toMatch(/eloquent_scratch_verify_\S+ \S+eloquent-pg-restore-\S+\/schemas\.dump$/);

    const restored = await cloneAs(backup.backupId, clones[0] ?? '');
    expect(restored.comparisons.length).toBeGreaterThan(8);
    expect(restored.comparisons.every((c) => c.equal)).toBe(true);
  });

  it('a backup in the format before (pg_dump -Z1 gzip, stored as it came) still verifies and restores', async () => {
    const backup = await backUp();
    const manifest = await readManifest(backup.backupId);
    // Rewrite the archive as the code before issue 17 wrote it: pg_dump's own compression, level 1.
    const map = organizationDataMap(source);
    const schemas = await listOrgSchemas(env.clients.postgres, map);
    const oldArchive = path.join(toolDir, 'old.dump');
    await output(pgTool(toolDir, 'pg_dump'), [
      '--format=custom',
      '--compress=1',
      '--no-owner',
      '--no-privileges',
      `--dbname=${env.config.postgres.url}`,
      `--file=${oldArchive}`,
      ...schemas.map((s) => `--schema="${s}"`),
    ]);
    expect(await output(pgTool(toolDir, 'pg_restore'), ['--list', oldArchive])).toMatch(/^;\s+Compression: (1|gzip)/m);
    const store = createFilesystemBackupStore(env.config.backup);
    const { createReadStream } = await import('node:fs');
    const record = await writeArtifact(
      store,
      { orgId: source, backupId: backup.backupId, path: 'postgres/schemas.dump' },
      createReadStream(oldArchive),
      { alreadyCompressed: true },
    );
    expect(record.compression).toBe('none');
    const artifacts = manifest.artifacts.map((a) =>
      a.file === 'postgres/schemas.dump'
        ? {
            ...a,
            bytes: record.bytes,
            rawBytes: record.rawBytes,
            sha256: record.sha256,
            compression: record.compression,
          }
        : a,
    );
    await writeFile(path.join(backupDir(backup.backupId), 'manifest.json'), JSON.stringify({ ...manifest, artifacts }));
    expect(
      (await readManifest(backup.backupId)).artifacts.find((a) => a.file === 'postgres/schemas.dump')?.compression,
    ).toBe('none');

    const report = await verify(backup.backupId);
    expect(report.result).toBe('passed');
    expect(report.comparisons.every((c) => c.equal)).toBe(true);
    const restored = await cloneAs(backup.backupId, clones[1] ?? '');
    expect(restored.comparisons.every((c) => c.equal)).toBe(true);
  });
});

async function readAllFrom(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
