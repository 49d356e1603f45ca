import { WorkflowFailedError } from '@temporalio/client';
import { platformPreflight } from '../src/workflows';
import { startTestWorker, type TestWorker } from './support/test-worker';

describe('platformPreflight on the real stack', () => {
  let env: TestWorker;
  beforeAll(async () => {
    env = await startTestWorker('preflight');
  });
  afterAll(async () => {
    await env?.shutdown();
  });

  it('reports version and latency of all four stores, and the run is visible on the server', async () => {
    const workflowId = `preflight-test-${Date.now()}`;
    const handle = await env.client.workflow.start(platformPreflight, {
      taskQueue: env.taskQueue,
      workflowId,
      args: [{}],
    });
    const report = await handle.result();
    expect(report.stores.map((s) => s.store).sort()).toEqual(['clickhouse', 'postgres', 'queue', 'redis']);
    for (const probe of report.stores) {
      expect(probe.version).toMatch(/^\d+\.\d+/);
      expect(probe.latencyMs).toBeGreaterThanOrEqual(0);
    }
    expect(report.stores.find((s) => s.store === 'postgres')?.address).toBe('127.0.0.1:5432');
    const description = await env.client.workflow.getHandle(workflowId).describe();
    expect(description.status.name).toBe('COMPLETED');
    expect(description.type).toBe('platformPreflight');
  });

  it('rejects an unknown store name, naming the field', async () => {
    const run = env.client.workflow.execute(platformPreflight, {
      taskQueue: env.taskQueue,
      workflowId: `preflight-bad-input-${Date.now()}`,
      args: [{ stores: ['postgres', 'mongodb' as 'postgres'] }],
    });
    await expect(run).rejects.toThrow(WorkflowFailedError);
    await run.catch((err: WorkflowFailedError) =>
      expect(err.cause?.message).toMatch(/stores: unknown store "mongodb"/),
    );
  });
});

describe('platformPreflight with a store that is down', () => {
  let env: TestWorker;
  beforeAll(async () => {
    // Port 1 on loopback is closed: Redis "is down".
    env = await startTestWorker('preflight-down', { REDIS_URL: 'redis://127.0.0.1:1/0', PREFLIGHT_TIMEOUT_MS: '1500' });
  });
  afterAll(async () => {
    await env?.shutdown();
  });

  it('fails fast, non-retryable, naming the store and its address', async () => {
    const started = Date.now();
    const failure = await env.client.workflow
      .execute(platformPreflight, { taskQueue: env.taskQueue, workflowId: `preflight-down-${Date.now()}`, args: [{}] })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const cause = (failure as WorkflowFailedError).cause;
    expect(cause?.message).toMatch(/redis at 127\.0\.0\.1:1 is unreachable/);
    expect(cause?.message).not.toMatch(/postgres|clickhouse|queue/);
    // Three bounded attempts, not the default endless retry.
    expect(Date.now() - started).toBeLessThan(30_000);
  });
});
