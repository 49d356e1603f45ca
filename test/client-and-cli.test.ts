import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { WorkflowNotFoundError } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../src/activities';
import { DEFAULT_PLATFORM_MODEL } from '../src/platform/data-map';
import { runCli } from '../src/cli/main';
import { captureIo } from './support/cli-io';
import { connectRecoveryClient, InvalidRequestError, type RecoveryClient } from '../src/client';
import { startMetrics, type MetricsEndpoint } from '../src/metrics/start-metrics';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { rejectionOf } from './support/failures';
import { WORKFLOW_BUNDLE_PATH } from './support/paths';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';
import { createActivityDeps } from '../src/worker';

describe('client SDK, CLI and metrics', () => {
  let env: TestWorker;
  let sdk: RecoveryClient;
  let metrics: MetricsEndpoint;
  let metricsWorker: Worker;
  let metricsRun: Promise<void>;
  let metricsConnection: NativeConnection;
  const orgId = uniqueOrgId('sdk');
  const metricsQueue = `test-metrics-${Date.now()}`;

  beforeAll(async () => {
    env = await startTestWorker('client-cli');
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'sdk' });
    sdk = await connectRecoveryClient({ config: env.config, taskQueue: env.taskQueue });
    // A worker whose activities are instrumented as worker.ts does once startMetrics is wired in.
    metrics = await startMetrics({ config: env.config, clients: env.clients, port: 0 });
    metricsConnection = await NativeConnection.connect({ address: env.config.temporal.address });
    metricsWorker = await Worker.create({
      connection: metricsConnection,
      namespace: env.config.temporal.namespace,
      taskQueue: metricsQueue,
      workflowBundle: { codePath: WORKFLOW_BUNDLE_PATH },
      activities: metrics.instrument(
        createActivities(
          createActivityDeps({
            config: env.config,
            clients: env.clients,
            model: DEFAULT_PLATFORM_MODEL,
            temporal: env.client,
          }),
        ),
      ),
    });
    metricsRun = metricsWorker.run();
  });
  afterAll(async () => {
    metricsWorker?.shutdown();
    await metricsRun;
    await metricsConnection?.close();
    await metrics?.close();
    await sdk?.close();
    if (env) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      await env.shutdown();
    }
  });

  it('startBackup with the same request id twice starts one workflow and returns the same run', async () => {
    const requestId = `req-${Date.now()}`;
    const first = await sdk.startBackup({ orgId, verify: false }, { requestId });
    const second = await sdk.startBackup({ orgId, verify: false }, { requestId });
    expect(second.workflowId).toBe(first.workflowId);
    expect(second.runId).toBe(first.runId);
    await sdk.waitForResult(first.workflowId);
    // After it finished, the same request id still maps to that run rather than starting a new one.
    const third = await sdk.startBackup({ orgId, verify: false }, { requestId });
    expect(third.runId).toBe(first.runId);
    const status = await sdk.getOperationStatus(first.workflowId);
    expect(status).toMatchObject({ status: 'COMPLETED', orgId, operation: 'backup', memo: { requestId } });
    const backups = await sdk.listBackups(orgId);
    expect(backups[0]?.status).toBe('complete');
  });

  it('rejects bad input before sending anything, naming the field and the rule', async () => {
    const bad = await rejectionOf(sdk.startBackup({ orgId: 'Not-An-Org' }));
    expect(bad).toBeInstanceOf(InvalidRequestError);
    expect(bad).toMatchObject({
      field: 'orgId',
      message: expect.stringMatching(/^orgId: invalid organization id "Not-An-Org": an organization id is/),
    });
    const mismatch = await rejectionOf(
      sdk.startDeletion({
        orgId,
        confirmOrgId: `${orgId}x`,
        requestedBy: 'test',
        reason: 'test',
        gracePeriod: '7d',
        skipBackup: false,
      }),
    );
    expect(mismatch).toMatchObject({ field: 'confirmOrgId' });
    const grace = await rejectionOf(
      sdk.startDeletion({
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'test',
        reason: 'test',
        gracePeriod: 'soon',
        skipBackup: false,
      }),
    );
    expect(grace).toMatchObject({ field: 'gracePeriod' });
    await expect(sdk.temporal.workflow.getHandle(`delete-org-${orgId}`).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  });

  it('CLI backup prints per-artifact progress and exits 0', async () => {
    const io = captureIo(process.env);
    const code = await runCli(['backup', orgId, '--task-queue', env.taskQueue, '--poll-ms', '100'], io);
    expect(io.err).toBe('');
    expect(code).toBe(0);
    expect(io.out).toMatch(/started backup-/);
    expect(io.out).toMatch(/✓ postgres schemas/);
    expect(io.out).toMatch(/✓ clickhouse clickhouse:/);
    expect(io.out).toMatch(new RegExp(`backup \\S+ of ${orgId}: \\d+ artifacts`));
  });

  it("CLI --json prints one parseable document with the result, read from the worker's store, not the caller's disk", async () => {
    // The operator's machine has a BACKUP_DIR of its own, empty: the listing must still come from the worker.
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'operator-laptop-'));
    const io = captureIo({ ...process.env, BACKUP_DIR: elsewhere });
    const code = await runCli(['backups', orgId, '--json', '--task-queue', env.taskQueue], io).finally(() =>
      rm(elsewhere, { recursive: true, force: true }),
    );
    expect(code).toBe(0);
    const parsed = JSON.parse(io.out) as { ok: boolean; backups: Array<{ orgId: string; status: string }> };
    expect(parsed.ok).toBe(true);
    expect(parsed.backups.length).toBeGreaterThanOrEqual(2);
    expect(parsed.backups.every((b) => b.orgId === orgId)).toBe(true);
  });

  it('CLI delete without --confirm exits 2 off a terminal and starts nothing', async () => {
    const io = captureIo(process.env);
    const code = await runCli(['delete', orgId, '--task-queue', env.taskQueue, '--json'], io);
    expect(code).toBe(2);
    expect(JSON.parse(io.out)).toMatchObject({ ok: false, exitCode: 2, error: expect.stringMatching(/--confirm/) });
    await expect(sdk.temporal.workflow.getHandle(`delete-org-${orgId}`).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
    const row = await env.clients.postgres.query('SELECT id FROM public.organizations WHERE id = $1', [orgId]);
    expect(row.rowCount).toBe(1);
    // On a terminal, a wrong answer to the question refuses (exit 4), again with nothing started.
    const tty = { ...captureIo(process.env, true), ask: async () => 'no' };
    expect(await runCli(['delete', orgId, '--task-queue', env.taskQueue], tty)).toBe(4);
    await expect(sdk.temporal.workflow.getHandle(`delete-org-${orgId}`).describe()).rejects.toBeInstanceOf(
      WorkflowNotFoundError,
    );
  });

  it('CLI exits 2 on an unknown command and prints help for each command', async () => {
    expect(await runCli(['frobnicate'], captureIo(process.env))).toBe(2);
    const help = captureIo(process.env);
    expect(await runCli(['restore', '--help'], help)).toBe(0);
    expect(help.out).toMatch(/--replace/);
  });

  it('the metrics endpoint binds to loopback unless METRICS_HOST says otherwise', () => {
    expect(metrics.host).toBe('127.0.0.1');
  });

  it('metrics counters of backed-up bytes and artifacts move after a backup', async () => {
    const scrape = async () => (await fetch(`http://127.0.0.1:${metrics.port}/metrics`)).text();
    const value = (text: string, series: string) =>
      Number(new RegExp(`^${series.replace(/[{}"\\]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
    const before = await scrape();
    const metricsSdk = await connectRecoveryClient({ config: env.config, taskQueue: metricsQueue });
    try {
      const started = await metricsSdk.startBackup({ orgId, verify: false });
      await metricsSdk.waitForResult(started.workflowId);
    } finally {
      await metricsSdk.close();
    }
    const after = await scrape();
    expect(value(after, 'eloquent_backup_bytes_total{store="postgres"}')).toBeGreaterThan(
      value(before, 'eloquent_backup_bytes_total{store="postgres"}'),
    );
    expect(value(after, 'eloquent_backup_bytes_total{store="clickhouse"}')).toBeGreaterThan(0);
    expect(value(after, 'eloquent_backup_artifacts_total{store="clickhouse"}')).toBeGreaterThan(0);
    // The test organization has no verified backup: its last verified backup time is 0.
    expect(after).toMatch(
      new RegExp(`^eloquent_last_verified_backup_timestamp_seconds\\{org_id="${orgId}"\\} 0$`, 'm'),
    );
  });
});
