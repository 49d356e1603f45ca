import { jetstream, type JsMsg } from '@nats-io/jetstream';
import { z } from 'zod';
import type { ArchiveChatResult } from '../src/contracts/chat-archive';
import { organizationDataMap } from '../src/platform/data-map';
import { quoteClickHouseQualified } from '../src/platform/quoting';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { archiveChat } from '../src/workflows';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';
import { startWorkerProcess, type WorkerProcess } from './support/worker-process';

const countRow = z.object({ n: z.union([z.string(), z.number()]).transform(Number) });
const seqRow = z.object({ seq: z.union([z.string(), z.number()]).transform(Number), subject: z.string() });

describe('archiveChat', () => {
  let env: TestWorker;
  const orgs: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('archive-chat');
  });
  afterAll(async () => {
    if (env) {
      for (const orgId of orgs) await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await env.shutdown();
    }
  });

  /** A seeded organization whose chat tables start empty (the seed fills them with made-up rows). */
  async function organizationWithEmptyArchive(prefix: string): Promise<string> {
    const orgId = uniqueOrgId(prefix);
    orgs.push(orgId);
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: prefix });
    const map = organizationDataMap(orgId);
    for (const table of [map.clickhouse.chatArchiveTable, map.clickhouse.deadLetterTable]) {
      await env.clients.clickhouse.command({
        query: `TRUNCATE TABLE ${quoteClickHouseQualified(map.clickhouse.database, table)}`,
      });
    }
    return orgId;
  }

  async function publish(
    orgId: string,
    messages: Array<{ room: string; payload: string | Uint8Array }>,
  ): Promise<void> {
    const js = jetstream(await env.clients.nats.connection());
    const prefix = organizationDataMap(orgId).queue.streams.find((s) => s.stream === 'CHAT')?.subjectPrefix ?? '';
    for (const m of messages) await js.publish(`${prefix}.${m.room}`, m.payload);
  }

  /** Every sequence of the organization's CHAT messages, read from the stream itself. */
  async function streamSequences(orgId: string): Promise<number[]> {
    const stream = organizationDataMap(orgId).queue.streams.find((s) => s.stream === 'CHAT');
    const consumer = await jetstream(await env.clients.nats.connection()).consumers.get('CHAT', {
      filter_subjects: stream?.filterSubject ?? '',
    });
    const seqs: number[] = [];
    try {
      for (;;) {
        const batch = await consumer.fetch({ max_messages: 500, expires: 2000 });
        let n = 0;
        let last = false;
        for await (const m of batch as AsyncIterable<JsMsg>) {
          n++;
          seqs.push(m.seq);
          if (m.info.pending === 0) {
            last = true;
            break;
          }
        }
        if (last || n === 0) break;
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
    return seqs;
  }

  async function rows(
    orgId: string,
    table: 'archive' | 'dead',
    final: boolean,
  ): Promise<Array<{ seq: number; subject: string }>> {
    const map = organizationDataMap(orgId);
    const name = table === 'archive' ? map.clickhouse.chatArchiveTable : map.clickhouse.deadLetterTable;
    const result = await env.clients.clickhouse.query({
      query: `SELECT seq, subject FROM ${quoteClickHouseQualified(map.clickhouse.database, name)}${final ? ' FINAL' : ''} ORDER BY seq`,
      format: 'JSONEachRow',
    });
    return z.array(seqRow).parse(await result.json<unknown>());
  }

  async function archivedCount(orgId: string): Promise<number> {
    const map = organizationDataMap(orgId);
    const result = await env.clients.clickhouse.query({
      query: `SELECT count() AS n FROM ${quoteClickHouseQualified(map.clickhouse.database, map.clickhouse.chatArchiveTable)}`,
      format: 'JSONEachRow',
    });
    return z.array(countRow).parse(await result.json<unknown>())[0]?.n ?? 0;
  }

  /** Every stream message is in exactly one of the tables, exactly once, even before any merge. */
  async function expectExactlyOnce(orgId: string, malformed: number): Promise<number[]> {
    const seqs = await streamSequences(orgId);
    const archived = await rows(orgId, 'archive', false);
    const dead = await rows(orgId, 'dead', false);
    // Without FINAL: no duplicate row was ever written, not merely merged away.
    expect(new Set(archived.map((r) => r.seq)).size).toBe(archived.length);
    expect(new Set(dead.map((r) => r.seq)).size).toBe(dead.length);
    expect([...archived, ...dead].map((r) => r.seq).sort((a, b) => a - b)).toEqual(seqs);
    expect(dead.length).toBe(malformed);
    expect((await rows(orgId, 'archive', true)).length).toBe(seqs.length - malformed);
    return seqs;
  }

  it('archives each message exactly once over two runs and sends a malformed one to the dead-letter table with its reason', async () => {
    const orgId = await organizationWithEmptyArchive('arc');
    await publish(orgId, [
      { room: 'room_x', payload: 'this is {not json' },
      { room: 'room_x', payload: JSON.stringify({ from: 'user1', text: 'hello' }) },
      { room: 'room_y', payload: JSON.stringify({ from: 'user2', no: 'text field' }) },
    ]);
    const run = () =>
      env.client.workflow.execute(archiveChat, {
        taskQueue: env.taskQueue,
        workflowId: `archive-chat-${orgId}-${Date.now()}`,
        args: [{ orgId, olderThanMs: 0, batchSize: 16 }],
      }) as Promise<ArchiveChatResult>;

    const first = await run();
    const seqs = await expectExactlyOnce(orgId, 2);
    expect(first.archived).toBe(seqs.length - 2);
    expect(first.deadLettered).toBe(2);
    expect(first.lastSequence).toBe(seqs[seqs.length - 1]);
    const archived = await rows(orgId, 'archive', true);
    const highestRoomX = Math.max(...archived.filter((r) => r.subject === 'room_x').map((r) => r.seq));
    expect(first.highestSequenceBySubject.room_x).toBe(highestRoomX);

    const second = await run();
    expect(second.archived).toBe(0);
    expect(second.deadLettered).toBe(0);
    await expectExactlyOnce(orgId, 2);

    const map = organizationDataMap(orgId);
    const reasons = await env.clients.clickhouse.query({
      query: `SELECT payload, error FROM ${quoteClickHouseQualified(map.clickhouse.database, map.clickhouse.deadLetterTable)} ORDER BY seq`,
      format: 'JSONEachRow',
    });
    const dead = z.array(z.object({ payload: z.string(), error: z.string() })).parse(await reasons.json<unknown>());
    expect(dead[0]).toEqual({ payload: 'this is {not json', error: expect.stringMatching(/not JSON/) });
    expect(dead[1]?.error).toMatch(/not a chat message: text/);
  });

  it('leaves messages younger than the age in the stream unarchived', async () => {
    const orgId = await organizationWithEmptyArchive('arcy');
    const result = (await env.client.workflow.execute(archiveChat, {
      taskQueue: env.taskQueue,
      workflowId: `archive-chat-${orgId}-${Date.now()}`,
      args: [{ orgId, olderThanMs: 60 * 60 * 1000 }],
    })) as ArchiveChatResult;
    expect(result.archived).toBe(0);
    expect(await archivedCount(orgId)).toBe(0);
  });

  it('archives each message exactly once when the worker is killed in the middle of the run', async () => {
    const orgId = await organizationWithEmptyArchive('arck');
    const messages = Array.from({ length: 1500 }, (_, i) => ({
      room: `room_${i % 5}`,
      payload: i % 97 === 13 ? `broken ${i}` : JSON.stringify({ from: `user${i % 7}`, text: `message ${i}` }),
    }));
    await publish(orgId, messages);
    const malformed = messages.filter((m) => typeof m.payload === 'string' && m.payload.startsWith('broken')).length;
    const taskQueue = `${env.taskQueue}-kill`;
    let worker: WorkerProcess | undefined = await startWorkerProcess(taskQueue);
    let second: WorkerProcess | undefined;
    try {
      const handle = await env.client.workflow.start(archiveChat, {
        taskQueue,
        workflowId: `archive-chat-${orgId}-${Date.now()}`,
        args: [{ orgId, olderThanMs: 0, batchSize: 10 }],
      });
      // Kill once some batches are in ClickHouse and many are not.
      const deadline = Date.now() + 60_000;
      let before = 0;
      while (Date.now() < deadline) {
        before = await archivedCount(orgId);
        if (before > 0) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      await worker.kill();
      worker = undefined;
      expect(before).toBeGreaterThan(0);
      expect(await archivedCount(orgId)).toBeLessThan(messages.length);

      second = await startWorkerProcess(taskQueue);
      const result = (await handle.result()) as ArchiveChatResult;
      expect(result.alreadyArchived + result.archived + result.deadLettered).toBeGreaterThan(0);
      await expectExactlyOnce(orgId, malformed);
    } finally {
      await worker?.kill();
      await second?.stop();
    }
  }, 180_000);
});
