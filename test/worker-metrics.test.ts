import { randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { loadConfig } from '../src/config';
import { platformPreflight } from '../src/workflows';
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

// One jest process can install only one Temporal Runtime, so the worker runs as in production: its own process.
describe('the worker process /metrics endpoint', () => {
  const config = loadConfig();
  const taskQueue = `test-metrics-process-${randomUUID().slice(0, 8)}`;
  let worker: WorkerProcess | undefined;
  let connection: Connection;

  beforeAll(async () => {
    connection = await Connection.connect({ address: config.temporal.address });
  });
  afterAll(async () => {
    await worker?.stop();
    await connection?.close();
  });

  it("serves this project's counters followed by Temporal's runtime metrics for the work it did", async () => {
    const port = await freePortPair();
    worker = await startWorkerProcess(taskQueue, { METRICS_PORT: String(port) });
    const client = new Client({ connection, namespace: config.temporal.namespace });
    await client.workflow.execute(platformPreflight, {
      taskQueue,
      workflowId: `preflight-metrics-${Date.now()}`,
      args: [],
    });

    const text = await scrape(port);
    // Ours: each preflight probe ran once and succeeded.
    expect(text).toMatch(/^eloquent_activity_runs_total\{[^}]*activity="probePostgres"[^}]*outcome="ok"[^}]*\} 1$/m);
    expect(text).toMatch(/^# TYPE eloquent_activity_duration_seconds histogram$/m);
    // Temporal's, re-served from its exporter on port + 1: the workflow this worker completed.
    expect(text).toMatch(/^temporal_workflow_completed\{[^}]*workflow_type="platformPreflight"[^}]*\} [1-9]/m);
    expect(text).toMatch(/^temporal_activity_execution_latency[_a-z]*\{[^}]*activity_type="probePostgres"/m);
    // Ours come first, then Temporal's.
    expect(text.indexOf('eloquent_activity_runs_total')).toBeLessThan(text.indexOf('temporal_'));
  }, 120_000);
});
