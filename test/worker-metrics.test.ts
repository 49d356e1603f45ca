import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../src/config';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { WorkflowFailedError } from '@temporalio/client';
import { METRIC_NAMES } from '../src/metrics/metrics-registry';
import { dropSeededOrganization } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients } from '../src/store-clients';
import { backupOrganization, platformPreflight, verifyBackup } from '../src/workflows';
import { createBareOrganization } from './support/bare-organization';
import { REPO_ROOT } from './support/paths';
import { uniqueOrgId } from './support/test-worker';
import { startWorkerProcess, type WorkerProcess } from './support/worker-process';

/** True when nothing listens on `port` of the loopback interface. */
async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port P with P + 1 free too: the worker serves /metrics on P and Temporal's exporter on P + 1. */
async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 40_000);
    if ((await portIsFree(port)) && (await portIsFree(port + 1))) return port;
  }
  throw new Error('no two adjacent free ports found');
}

async function scrape(port: number): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain/);
  return response.text();
}

/** Metric names a PromQL expression reads (those of this project, Temporal's SDK and the process). */
function metricNamesIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:eloquent|temporal|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1] ?? '');
}

/** Whether the scrape exports `name`: a sample of it (a histogram's `_bucket`/`_sum`/`_count` count), or its HELP line. */
function exports(text: string, name: string): boolean {
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return new RegExp(`^(# HELP )?(${name}|${base}_(bucket|sum|count))[ {]`, 'm').test(text);
}

// One jest process can install only one Temporal Runtime, so the worker runs as in production: its own process.
describe('the worker process /metrics endpoint', () => {
  const config = loadConfig();
  const taskQueue = `test-metrics-process-${randomUUID().slice(0, 8)}`;
  const orgId = uniqueOrgId('met');
  const clients = createStoreClients(config);
  let worker: WorkerProcess | undefined;
  let connection: Connection;
  let text = '';

  beforeAll(async () => {
    connection = await Connection.connect({ address: config.temporal.address });
    await createBareOrganization(clients, orgId);
    const port = await freePortPair();
    worker = await startWorkerProcess(taskQueue, { METRICS_PORT: String(port) });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    await client.workflow.execute(platformPreflight, {
      taskQueue,
      workflowId: `preflight-metrics-${Date.now()}`,
      args: [],
    });
    // A backup that fails at once (no such organization): Temporal's failure metrics exist after it.
    await expect(
      client.workflow.execute(backupOrganization, {
        taskQueue,
        workflowId: `backup-metrics-missing-${Date.now()}`,
        args: [{ orgId: uniqueOrgId('nobody'), reason: 'metrics test', verify: false }],
      }),
    ).rejects.toBeInstanceOf(WorkflowFailedError);
    // The backup's check above runs as a local activity; a verification of a backup that does not
    // exist fails a regular one (locateBackup). The dashboard shows both kinds of failure.
    await expect(
      client.workflow.execute(verifyBackup, {
        taskQueue,
        workflowId: `verify-metrics-missing-${Date.now()}`,
        args: [{ backupId: `20200101T000000Z-${randomUUID().slice(0, 8)}` }],
      }),
    ).rejects.toBeInstanceOf(WorkflowFailedError);
    text = await scrape(port);
  }, 180_000);
  afterAll(async () => {
    await worker?.stop();
    await connection?.close();
    await dropSeededOrganization(clients, orgId).catch(() => undefined);
    await closeStoreClients(clients);
  });

  it("serves prom-client's process metrics, this project's own, then Temporal's runtime metrics", () => {
    for (const name of [
      'process_resident_memory_bytes',
      'process_cpu_seconds_total',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ])
      expect(exports(text, name)).toBe(true);
    for (const name of Object.values(METRIC_NAMES))
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge)$`, 'm'));
    // Temporal's, re-served from its exporter on port + 1: the workflows this worker ran.
    expect(text).toMatch(/^temporal_workflow_completed\{[^}]*workflow_type="platformPreflight"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^temporal_workflow_failed\{[^}]*workflow_type="backupOrganization"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^temporal_activity_execution_latency[_a-z]*\{[^}]*activity_type="probePostgres"/m);
    expect(text.indexOf('eloquent_stale_organizations')).toBeLessThan(text.indexOf('temporal_'));
  });

  it("counts no activity attempts of its own: those are Temporal's (no duplicate series)", () => {
    expect(text).not.toMatch(/^eloquent_activity_/m);
  });

  it('gives each organization the time of its newest verified backup, labelled org_id, 0 when it has none', () => {
    expect(text).toMatch(new RegExp(`^eloquent_last_verified_backup_timestamp_seconds\\{org_id="${orgId}"\\} 0$`, 'm'));
    expect(Number(/^eloquent_stale_organizations (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
  });

  it('every query of the Grafana dashboard and every alert rule names metrics this worker exports', async () => {
    const dashboard = JSON.parse(
      await readFile(path.join(REPO_ROOT, 'deploy', 'grafana', 'eloquent-recovery.json'), 'utf8'),
    ) as {
      panels: Array<{ title: string; targets?: Array<{ expr: string }> }>;
    };
    const rules = await readFile(path.join(REPO_ROOT, 'deploy', 'prometheus', 'alerts.yaml'), 'utf8');
    const expressions = [
      ...dashboard.panels.flatMap((panel) =>
        (panel.targets ?? []).map((t) => ({ where: `panel "${panel.title}"`, expr: t.expr })),
      ),
      ...[...rules.matchAll(/^\s+expr: (.+)$/gm)].map((m) => ({ where: 'alerts.yaml', expr: m[1] ?? '' })),
    ];
    expect(expressions.length).toBeGreaterThan(10);
    const missing = expressions.flatMap(({ where, expr }) =>
      metricNamesIn(expr)
        .filter((name) => !exports(text, name))
        .map((name) => `${where}: ${name}`),
    );
    expect(missing).toEqual([]);
    expect(expressions.every(({ expr }) => metricNamesIn(expr).length > 0)).toBe(true);
  });
});
