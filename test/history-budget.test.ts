import { temporal } from '@temporalio/proto';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { organizationDataMap } from '../src/platform/data-map';
import { quoteClickHouseIdent, quoteClickHouseQualified } from '../src/platform/quoting';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { ensurePlatformSchema } from '../src/platform/platform-schema';
import { archiveChat, backupOrganization, backupPlatform } from '../src/workflows';
import { removeDeletionArtifacts } from './support/deletion';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';
import { startThrottledProxy, type ThrottledProxy } from './support/throttled-proxy';

/** Events and protobuf bytes of one run's history, read from the Temporal server (what its limits count). */
interface HistorySize {
  runId: string;
  events: number;
  bytes: number;
  signals: number;
  signalBytes: number;
}

async function historySize(client: Client, workflowId: string, runId?: string): Promise<HistorySize> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const events = history.events ?? [];
  const signals = events.filter((e) => e.workflowExecutionSignaledEventAttributes);
  return {
    runId: runId ?? '',
    events: events.length,
    bytes: temporal.api.history.v1.History.encode(history).finish().length,
    signals: signals.length,
    signalBytes: signals.reduce((sum, e) => sum + temporal.api.history.v1.HistoryEvent.encode(e).finish().length, 0),
  };
}

/**
 * Every run of a workflow id (continue-as-new makes several), oldest first, with its history size and
 * status. Read from the runs themselves, newest back to oldest through each history's first event,
 * not from the visibility store, which may still show a just-finished run as RUNNING.
 */
async function historySizesOfRuns(
  client: Client,
  workflowId: string,
): Promise<Array<HistorySize & { status: string }>> {
  const sizes: Array<HistorySize & { status: string }> = [];
  let runId: string | undefined = (await client.workflow.getHandle(workflowId).describe()).runId;
  while (runId) {
    const handle: WorkflowHandle = client.workflow.getHandle(workflowId, runId);
    const status = (await handle.describe()).status.name;
    sizes.unshift({ ...(await historySize(client, workflowId, runId)), status });
    const history: temporal.api.history.v1.IHistory = await handle.fetchHistory();
    runId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.continuedExecutionRunId || undefined;
  }
  return sizes;
}

/**
 * Item 7 of issue 15: histories must not grow with a run's duration or with the number of
 * organizations. Temporal warns at 10k events / 10 MB and terminates a run at 50k / 50 MB.
 */
describe('history budgets', () => {
  describe('a long backup', () => {
    let proxy: ThrottledProxy | undefined;
    let env: TestWorker | undefined;
    const orgId = uniqueOrgId('hbb');

    afterAll(async () => {
      if (env) {
        await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
        await removeDeletionArtifacts(env.clients, env.config.backup.directory, orgId);
        await env.shutdown();
      }
      await proxy?.close();
    });

    it('a backup that streams for about a minute reports its progress in a few signals, not one full artifact list every 3 s', async () => {
      const clickhouse = new URL(process.env.CLICKHOUSE_URL ?? 'http://127.0.0.1:8123');
      // A slow link to the real ClickHouse: the backup lasts as long as a big organization's would.
      proxy = await startThrottledProxy({ host: clickhouse.hostname, port: Number(clickhouse.port || 8123) }, 32_000);
      env = await startTestWorker('history-backup', { CLICKHOUSE_URL: `http://127.0.0.1:${proxy.port}` });
      await seedOrganization(env.clients, orgId, {
        scale: 'small',
        seed: 'history',
        sizes: { analyticsEvents: 150_000 },
      });
      const workflowId = `backup-${orgId}-history-${Date.now()}`;
      const started = Date.now();
      const summary = await env.client.workflow.execute(backupOrganization, {
        taskQueue: env.taskQueue,
        workflowId,
        args: [{ orgId, reason: 'history budget', verify: false }],
      });
      const durationMs = Date.now() - started;
      const size = await historySize(env.client, workflowId);
      process.stdout.write(
        `long backup: ${(durationMs / 1000).toFixed(1)} s, ${summary.artifacts} artifacts, ${(summary.bytes / 1e6).toFixed(1)} MB; history ${size.events} events, ${size.bytes} bytes; ${size.signals} progress signals, ${size.signalBytes} bytes\n`,
      );
      // Long enough that one report every 3 s would be 13 or more signals (and 52+ events).
      expect(durationMs).toBeGreaterThan(40_000);
      // Deltas: each finished artifact once, the one being written each time it doubled — a bound
      // of the backup's artifacts, not of its duration (under the suite's load it lasts ~2× longer
      // and reports finished artifacts in more, smaller deltas: 11 signals, 3.3 kB at 106 s). A full
      // artifact list every 3 s would be one signal per 3 s and ~2 kB each.
      expect(size.signals).toBeLessThanOrEqual(summary.artifacts + 5);
      expect(size.signals).toBeLessThan(durationMs / 3_000 / 2);
      expect(size.signalBytes).toBeLessThanOrEqual(6_000);
      // The workflow's own events: ~70 on a quiet machine; retried activities add some under load
      // (105 beside a second full suite, at 165 s) — bounded, and not one per interval.
      expect(size.events - size.signals).toBeLessThanOrEqual(120);
    }, 360_000);
  });

  describe('large fan-outs', () => {
    let env: TestWorker;
    const base = uniqueOrgId('hbf');
    /** Organizations with a row and empty chat tables: what archiveChat needs, made in seconds. */
    const small = Array.from({ length: 120 }, (_, i) => `${base}o${String(i).padStart(3, '0')}`);
    /** Ids of organizations that do not exist: their children fail, and the failures must stay bounded. */
    const ghosts = Array.from({ length: 30 }, (_, i) => `${base}g${String(i).padStart(3, '0')}`);

    async function inParallel<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
      const queue = [...items];
      await Promise.all(
        Array.from({ length: n }, async () => {
          for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
        }),
      );
    }

    beforeAll(async () => {
      env = await startTestWorker('history-fan-out');
      await ensurePlatformSchema(env.clients.postgres);
      await env.clients.postgres.query(
        `INSERT INTO public.organizations (id, name) SELECT id, 'history budget ' || id FROM unnest($1::text[]) id`,
        [small],
      );
      await inParallel(small, 4, async (orgId) => {
        const map = organizationDataMap(orgId);
        const q = (table: string) => quoteClickHouseQualified(map.clickhouse.database, table);
        await env.clients.clickhouse.command({
          query: `CREATE DATABASE ${quoteClickHouseIdent(map.clickhouse.database)}`,
        });
        await env.clients.clickhouse.command({
          query: `CREATE TABLE ${q(map.clickhouse.chatArchiveTable)} (stream String, seq UInt64, subject String, payload String, published_at DateTime, archived_at DateTime) ENGINE = ReplacingMergeTree ORDER BY (stream, seq)`,
        });
        await env.clients.clickhouse.command({
          query: `CREATE TABLE ${q(map.clickhouse.deadLetterTable)} (stream String, seq UInt64, subject String, payload String, error String, failed_at DateTime) ENGINE = MergeTree ORDER BY (stream, seq)`,
        });
      });
    }, 240_000);
    afterAll(async () => {
      if (!env) return;
      await inParallel(small, 4, async (orgId) => {
        const db = organizationDataMap(orgId).clickhouse.database;
        await env.clients.clickhouse
          .command({ query: `DROP DATABASE IF EXISTS ${quoteClickHouseIdent(db)}` })
          .catch(() => undefined);
      });
      await env.clients.postgres.query('DELETE FROM public.organizations WHERE id = ANY($1)', [small]);
      await env.shutdown();
    }, 240_000);

    it('archiveChat over 150 organizations continues as new every 15, each run within budget, and returns totals and the last 20 failures', async () => {
      const workflowId = `archive-chat-history-${base}`;
      const started = Date.now();
      const result = await env.client.workflow.execute(archiveChat, {
        taskQueue: env.taskQueue,
        workflowId,
        args: [{ orgIds: [...small, ...ghosts], pageSize: 15, concurrency: 8 }],
      });
      const durationMs = Date.now() - started;
      if ('stream' in result) throw new Error('expected the fan-out result');
      expect(result).toMatchObject({ organizations: 120, failedCount: 30, skipped: 0 });
      // Ids sort the ghosts (`…g000`) before the others (`…o000`): pages of 15 put ghosts 15-29 on the
      // second page, so the last 20 failures are those 15 and 5 of the first page (in the order they ended).
      expect(result.failed).toHaveLength(20);
      expect(result.failed.map((f) => f.orgId)).toEqual(expect.arrayContaining(ghosts.slice(15)));
      for (const f of result.failed) {
        expect(ghosts).toContain(f.orgId);
        expect(f.error).toMatch(/does not exist/);
      }
      const runs = await historySizesOfRuns(env.client, workflowId);
      const largest = runs.reduce((a, b) => (b.bytes > a.bytes ? b : a));
      process.stdout.write(
        `archiveChat fan-out over 150 organizations: ${(durationMs / 1000).toFixed(1)} s, ${runs.length} runs; largest history ${largest.events} events, ${largest.bytes} bytes; all runs ${runs.reduce((s, r) => s + r.events, 0)} events\n`,
      );
      // 150 organizations, 15 a run: 9 full pages continue as new, the 10th (15, full) continues into an empty 11th.
      expect(runs.map((r) => r.status)).toEqual([...Array(10).fill('CONTINUED_AS_NEW'), 'COMPLETED']);
      // One run holds one page: about 7 events per child, never all 150 children (some 1,000 events).
      for (const r of runs) {
        expect(r.events).toBeLessThanOrEqual(150);
        expect(r.bytes).toBeLessThanOrEqual(80_000);
      }
    }, 300_000);

    it('backupPlatform carries counts and the last 20 failures across continue-as-new, not every failure', async () => {
      const workflowId = `backup-platform-history-${base}`;
      const result = await env.client.workflow.execute(backupPlatform, {
        taskQueue: env.taskQueue,
        workflowId,
        args: [
          { orgIds: ghosts.slice(0, 30), pageSize: 10, concurrency: 8, stores: ['postgres'], reason: 'history budget' },
        ],
      });
      expect(result.succeeded).toBe(0);
      expect(result.failedCount).toBe(30);
      // Pages of 10 in id order; within a page, failures arrive in the order the children end.
      expect(result.failed.map((f) => f.orgId).sort()).toEqual(ghosts.slice(10, 30));
      const runs = await historySizesOfRuns(env.client, workflowId);
      // What the last run was started with: the carried summary holds at most 20 failures.
      const last = runs[runs.length - 1];
      const history = await env.client.workflow.getHandle(workflowId, last?.runId).fetchHistory();
      const startedWith = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0]?.data;
      const carried = JSON.parse(Buffer.from(startedWith ?? []).toString('utf8')) as {
        progress?: { failed: unknown[]; failedCount: number };
      };
      expect(carried.progress?.failedCount).toBe(30);
      expect(carried.progress?.failed.length).toBeLessThanOrEqual(20);
    }, 240_000);
  });
});
