import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { Pool } from 'pg';
import { runToolInto } from '../src/activities/postgres/tools';
import { runTool } from '../bench/run-tool';
import { loadConfig } from '../src/config';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { backupOrganization, restoreOrganization } from '../src/workflows';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

const TOOLS = ['pg_dump', 'pg_dumpall', 'pg_restore'] as const;

/**
 * A POSTGRES_BIN_DIR whose tools record the command line they were given (what `ps` and
 * `/proc/<pid>/cmdline` show every user) and whether PGPASSWORD carried the password, then run the
 * real tool with exactly those arguments.
 */
async function recordingBinDir(password: string): Promise<{ dir: string; log: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'pg-argv-'));
  const log = path.join(dir, 'invocations.log');
  for (const tool of TOOLS) {
    const real = execFileSync('bash', ['-c', `command -v ${tool}`])
      .toString()
      .trim();
    const script = [
      '#!/bin/bash',
      `printf '%s argv=%s pgpassword=%s\\n' ${tool} "$(tr '\\0' ' ' </proc/$$/cmdline)" "$([ "$PGPASSWORD" = ${JSON.stringify(password)} ] && echo set || echo unset)" >>${JSON.stringify(log)}`,
      `exec ${JSON.stringify(real)} "$@"`,
    ].join('\n');
    await writeFile(path.join(dir, tool), `${script}\n`);
    await chmod(path.join(dir, tool), 0o755);
  }
  return { dir, log };
}

describe('PostgreSQL passwords never reach a child process command line', () => {
  const role = `pwtest_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  const password = `s3cret-${randomUUID()}`;
  const source = uniqueOrgId('pwsrc');
  const clone = uniqueOrgId('pwcln');
  const base = loadConfig();
  const admin = new Pool({ connectionString: base.postgres.url, max: 1 });
  let bin: { dir: string; log: string };
  let env: TestWorker | undefined;
  let url: string;

  beforeAll(async () => {
    await admin.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password}'`);
    const withPassword = new URL(base.postgres.url);
    withPassword.username = role;
    withPassword.password = encodeURIComponent(password);
    url = withPassword.toString();
    bin = await recordingBinDir(password);
    env = await startTestWorker('pg-password', { POSTGRES_URL: url, POSTGRES_BIN_DIR: bin.dir });
    await seedOrganization(env.clients, source, { scale: 'small', seed: 'pw' });
  });
  afterAll(async () => {
    if (env) {
      for (const orgId of [source, clone]) {
        await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
        await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      }
      await env.shutdown();
    }
    await admin.query(`REASSIGN OWNED BY ${role} TO postgres`).catch(() => undefined);
    await admin.query(`DROP OWNED BY ${role}`).catch(() => undefined);
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
    if (bin) await rm(bin.dir, { recursive: true, force: true });
  });

  it('a backup with verification and a clone restore run pg_dump and pg_restore with the password in PGPASSWORD only', async () => {
    if (!env) throw new Error('worker not started');
    const backup = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${source}-${Date.now()}`,
      args: [{ orgId: source, reason: 'password test', verify: true }],
    });
    await env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${clone}-${Date.now()}`,
      args: [{ backupId: backup.backupId, orgId: source, targetOrgId: clone }],
    });

    const lines = (await readFile(bin.log, 'utf8')).trim().split('\n');
    // pg_dump of the backup, pg_restore of the verification, pg_restore + pg_dump + pg_restore of the clone.
    expect(lines.filter((l) => l.startsWith('pg_dump ')).length).toBeGreaterThanOrEqual(2);
    expect(lines.filter((l) => l.startsWith('pg_restore ')).length).toBeGreaterThanOrEqual(3);
    for (const line of lines) {
      expect(line).not.toContain(password);
      expect(line).not.toContain(encodeURIComponent(password));
    }
    // Every tool that connected was told the password (the others read an archive from stdin).
    const connecting = lines.filter((l) => l.includes('--dbname='));
    expect(connecting.length).toBeGreaterThanOrEqual(5);
    for (const line of connecting) {
      expect(line).toContain(`--dbname=postgres://${role}@`);
      expect(line).toMatch(/pgpassword=set$/);
    }
  }, 240_000);
});

describe('PostgreSQL tool runners (no worker)', () => {
  const role = `pwtool_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
  const password = `s3cret-${randomUUID()}`;
  const base = loadConfig();
  const admin = new Pool({ connectionString: base.postgres.url, max: 1 });
  let bin: { dir: string; log: string };
  let url: string;

  beforeAll(async () => {
    await admin.query(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD '${password}'`);
    const withPassword = new URL(base.postgres.url);
    withPassword.username = role;
    withPassword.password = encodeURIComponent(password);
    url = withPassword.toString();
    bin = await recordingBinDir(password);
  });
  afterAll(async () => {
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.end();
    if (bin) await rm(bin.dir, { recursive: true, force: true });
  });

  it('pg_dumpall of the platform globals gets the password through its environment, not argv', async () => {
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    await runToolInto(
      path.join(bin.dir, 'pg_dumpall'),
      ['--globals-only', `--dbname=${url}`],
      sink,
      new AbortController().signal,
      () => undefined,
      { orgId: '_platform', object: 'globals' },
    );
    expect(Buffer.concat(chunks).toString()).toContain(`CREATE ROLE ${role}`);
    const line = (await readFile(bin.log, 'utf8'))
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('pg_dumpall '))
      .pop();
    expect(line).toBeDefined();
    expect(line).not.toContain(password);
    expect(line).toMatch(/pgpassword=set$/);
  });

  it("the benchmarks' raw pg_dump, alone and inside a bash pipeline, gets the password through its environment, not argv", async () => {
    const pgDump = path.join(bin.dir, 'pg_dump');
    await runTool(pgDump, ['--schema-only', '--schema=public', `--dbname=${url}`, '--file=/dev/null']);
    // As bench/backup.ts runs `pg_dump … | zstd`: bash's own argv must not carry it either.
    await runTool('bash', [
      '-c',
      `{ tr '\\0' ' ' </proc/$$/cmdline; echo; } >>${JSON.stringify(bin.log)}; set -o pipefail; "$@" | wc -c >/dev/null`,
      'bash',
      pgDump,
      '--schema-only',
      '--schema=public',
      `--dbname=${url}`,
    ]);
    const lines = (await readFile(bin.log, 'utf8')).trim().split('\n');
    const dumps = lines.filter((l) => l.startsWith('pg_dump '));
    expect(dumps.length).toBe(2);
    for (const line of lines) expect(line).not.toContain(password);
    for (const line of dumps) expect(line).toMatch(/pgpassword=set$/);
  });
});
