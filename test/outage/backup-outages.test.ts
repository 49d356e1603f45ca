import { execFile } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { backupManifestSchema, type BackupManifest } from '../../src/contracts/backup';
import { dropSeededOrganization, seedOrganization } from '../../src/platform/seed-organization';
import { backupOrganization, backupProgressQuery, verifyBackup } from '../../src/workflows';
import { REPO_ROOT } from '../support/paths';
import { startTestWorker, uniqueOrgId, type TestWorker } from '../support/test-worker';
import { startWorkerProcess, type WorkerProcess } from '../support/worker-process';

const run = promisify(execFile);
const stack = (...args: string[]) =>
  run('bash', [path.join(REPO_ROOT, 'scripts', 'stack.sh'), ...args], { cwd: REPO_ROOT });

/** Polls until a file whose name matches `pattern` and holds at least `minBytes` exists below `dir`. */
async function waitForFile(dir: string, pattern: RegExp, minBytes: number, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const files = await readdir(dir, { recursive: true }).catch(() => [] as string[]);
    for (const file of files) {
      if (!pattern.test(path.basename(file))) continue;
      const size = await stat(path.join(dir, file)).then(
        (s) => s.size,
        () => 0,
      );
      if (size >= minBytes) return file;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no file matching ${pattern} of ${minBytes} bytes appeared under ${dir}`);
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The manifest is valid, matches the files, and no temporary file is left. */
async function expectCompleteBackup(backupDir: string): Promise<BackupManifest> {
  const manifest = backupManifestSchema.parse(
    JSON.parse(await readFile(path.join(backupDir, 'manifest.json'), 'utf8')),
  );
  for (const artifact of manifest.artifacts)
    expect(await sha256OfFile(path.join(backupDir, artifact.file))).toBe(artifact.sha256);
  expect((await readdir(backupDir, { recursive: true })).filter((f) => /\.tmp-/.test(f))).toEqual([]);
  return manifest;
}

/** Highest attempt number with which an activity of this type was started, from the run's history. */
async function attemptsOf(env: TestWorker, workflowId: string, activityType: string): Promise<number> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Map<string, string>();
  let attempts = 0;
  for (const event of history.events ?? []) {
    const id = String(event.eventId);
    if (event.activityTaskScheduledEventAttributes?.activityType?.name)
      scheduled.set(id, event.activityTaskScheduledEventAttributes.activityType.name);
    const started = event.activityTaskStartedEventAttributes;
    if (started && scheduled.get(String(started.scheduledEventId)) === activityType)
      attempts = Math.max(attempts, started.attempt ?? 0);
  }
  return attempts;
}

// Kills workers and stops the shared ClickHouse server: run alone (`npx jest test/outage --runInBand`).
describe('backupOrganization survives crashes and outages', () => {
  let env: TestWorker;
  const orgIds: string[] = [];
  const workers: WorkerProcess[] = [];

  beforeAll(async () => {
    // At gzip level 6 ClickHouse takes over 10 s for the 6 M-row export: long enough to watch it in
    // flight and stop the server in the middle of it (at level 1 it takes 2-3 s and may finish
    // between two progress reports).
    env = await startTestWorker('backup-outage', { CLICKHOUSE_EXPORT_GZIP_LEVEL: '6' });
  });
  afterAll(async () => {
    await stack('up', 'clickhouse');
    for (const worker of workers) await worker.kill().catch(() => undefined);
    if (env) {
      for (const orgId of orgIds) {
        await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
        await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      }
      await env.shutdown();
    }
  });

  it('a worker killed while the PostgreSQL dump streams is replaced, and the run ends with one valid backup and no temporary files', async () => {
    const orgId = uniqueOrgId('bkill');
    orgIds.push(orgId);
    // Large enough that pg_dump streams for seconds.
    await seedOrganization(env.clients, orgId, { scale: 'medium', seed: 'kill', sizes: { entities: 400_000 } });
    const taskQueue = `outage-kill-${randomUUID().slice(0, 8)}`;
    workers.push(await startWorkerProcess(taskQueue));
    const workflowId = `backup-${orgId}-kill`;
    const handle = await env.client.workflow.start(backupOrganization, {
      taskQueue,
      workflowId,
      args: [{ orgId, reason: 'kill test', verify: false }],
    });

    const orgDir = path.join(env.config.backup.directory, orgId);
    await waitForFile(orgDir, /^\.schemas\.dump\.tmp-/, 1_000_000);
    await workers[0]?.kill();
    workers.push(await startWorkerProcess(taskQueue));

    const summary = await handle.result();
    expect(await attemptsOf(env, workflowId, 'backupPostgres')).toBeGreaterThanOrEqual(2);
    const manifest = await expectCompleteBackup(path.join(orgDir, summary.backupId));
    expect(manifest.artifacts.find((a) => a.object === 'schemas')?.bytes).toBeGreaterThan(1_000_000);
    // Exactly one backup folder: the retry resumed into the same backup instead of starting another.
    expect((await readdir(orgDir)).filter((d) => /^\d{8}T/.test(d))).toEqual([summary.backupId]);
    // And it restores to what it came from.
    const report = await env.client.workflow.execute(verifyBackup, {
      taskQueue,
      workflowId: `verify-${summary.backupId}`,
      args: [{ orgId, backupId: summary.backupId }],
    });
    expect(report.result).toBe('passed');
  });

  it('ClickHouse stopped for a few seconds in the middle of a backup is survived through retries', async () => {
    const orgId = uniqueOrgId('bchdown');
    orgIds.push(orgId);
    await seedOrganization(env.clients, orgId, {
      scale: 'medium',
      seed: 'ch-down',
      sizes: { analyticsEvents: 6_000_000 },
    });
    const workflowId = `backup-${orgId}-chdown`;
    const handle = await env.client.workflow.start(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId,
      args: [{ orgId, reason: 'outage test', verify: false }],
    });

    const orgDir = path.join(env.config.backup.directory, orgId);
    await waitForFile(orgDir, /^\.analytics_events\.native\.tmp-/, 100_000);
    // The progress query shows the artifact being written, with its bytes so far.
    let inFlight: { bytes: number; done: boolean } | undefined;
    for (let i = 0; i < 100 && !inFlight; i++) {
      const progress = await handle.query(backupProgressQuery);
      inFlight = progress.artifacts.find((a) => a.object === 'clickhouse:analytics_events' && !a.done && a.bytes > 0);
      if (!inFlight) await new Promise((r) => setTimeout(r, 100));
    }
    expect(inFlight).toBeDefined();
    await stack('down', 'clickhouse');
    await new Promise((r) => setTimeout(r, 3_000));
    await stack('up', 'clickhouse');

    const summary = await handle.result();
    expect(await attemptsOf(env, workflowId, 'backupClickHouse')).toBeGreaterThanOrEqual(2);
    // Once done, every artifact is listed once, done.
    const final = await handle.query(backupProgressQuery);
    expect(final.step).toBe('done');
    expect(final.artifacts.every((a) => a.done)).toBe(true);
    expect(new Set(final.artifacts.map((a) => `${a.store}:${a.object}`)).size).toBe(final.artifacts.length);
    const manifest = await expectCompleteBackup(path.join(orgDir, summary.backupId));
    expect(manifest.artifacts.find((a) => a.object === 'clickhouse:analytics_events')?.rows).toBe(6_000_000);
    const report = await env.client.workflow.execute(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-${summary.backupId}`,
      args: [{ orgId, backupId: summary.backupId }],
    });
    expect(report.result).toBe('passed');
  });
});
