import type { ClickHouseClient } from '@clickhouse/client';
import { DeliverPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { Context } from '@temporalio/activity';
import type { Pool } from 'pg';
import { z } from 'zod';
import { CHAT_STREAM, type ArchiveChatResult } from '../../contracts/chat-archive';
import { FailureType, permanentFailure } from '../../errors';
import { organizationDataMap, type OrganizationDataMap, type PlatformModel } from '../../platform/data-map';
import { organizationSubjectCounts } from '../../platform/fingerprint-queue';
import { quoteClickHouseIdent, quoteClickHouseQualified, quoteClickHouseString } from '../../platform/quoting';
import type { NatsConnector } from '../../store-clients';
import { classifyClickHouseError } from '../clickhouse/errors';
import { whileNotSealed } from './final-state';

/** What the chat archive activities need. */
export interface ChatArchiveActivityDeps {
  clickhouse: ClickHouseClient;
  /** The platform database: the organization row fences every batch against a deletion's seal. */
  postgres: Pool;
  nats: NatsConnector;
  model: PlatformModel;
}

/** Input of {@link archiveOrganizationChat}. */
export interface ArchiveOrganizationChatInput {
  orgId: string;
  /** Only messages published at least this long ago are archived, in milliseconds. */
  olderThanMs: number;
  /** Messages per ClickHouse insert. */
  batchSize: number;
}

/** Why an archival stopped early: the organization passed its deletion's point of no return. */
const SKIPPED_SEALED = 'the organization is being deleted (past the point of no return); nothing more is archived';

/** How long one fetch waits for messages that are not there, in milliseconds. */
const FETCH_EXPIRES_MS = 3_000;

/** The shape a chat message must have to be archived; anything else goes to the dead-letter table. */
const chatMessageSchema = z.looseObject({ text: z.string() });

const heartbeatSchema = z.object({
  lastSequence: z.number().int().nonnegative(),
  read: z.number().int().nonnegative(),
  archived: z.number().int().nonnegative(),
  deadLettered: z.number().int().nonnegative(),
  alreadyArchived: z.number().int().nonnegative(),
});
type ArchiveHeartbeat = z.infer<typeof heartbeatSchema>;

const maxSeqRow = z.object({ subject: z.string(), seq: z.union([z.string(), z.number()]).transform(Number) });
const seqRow = z.object({ seq: z.union([z.string(), z.number()]).transform(Number) });
const existsRow = z.object({ result: z.union([z.string(), z.number()]).transform(Number) });

interface ReadMessage {
  seq: number;
  /** Subject after `chat.<org>.`, as the archive stores it, so a clone under another id compares equal. */
  subject: string;
  data: Uint8Array;
  publishedAtSeconds: number;
}

/** The parse verdict of one message: a row for the archive, or the reason it goes to the dead-letter table. */
type Verdict = { ok: true; payload: string } | { ok: false; payload: string; error: string };

function judge(data: Uint8Array): Verdict {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(data);
  } catch {
    // Keep the exact bytes: an operator must be able to see what was sent.
    return {
      ok: false,
      payload: `base64:${Buffer.from(data).toString('base64')}`,
      error: 'payload is not valid UTF-8',
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return {
      ok: false,
      payload: text,
      error: `payload is not JSON: ${err instanceof Error ? err.message : String(err)}`,
    };
  }
  const parsed = chatMessageSchema.safeParse(json);
  if (!parsed.success) {
    return {
      ok: false,
      payload: text,
      error: `payload is not a chat message: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    };
  }
  return { ok: true, payload: text };
}

function chatStreamOf(map: OrganizationDataMap) {
  const stream = map.queue.streams.find((s) => s.stream === CHAT_STREAM);
  if (!stream) {
    throw permanentFailure(FailureType.InvalidInput, `the platform model has no ${CHAT_STREAM} stream`, {
      store: 'queue',
      orgId: map.orgId,
      object: CHAT_STREAM,
    });
  }
  return stream;
}

/**
 * Archives one organization's chat messages older than `olderThanMs` into its ClickHouse
 * `chat_archive` table, exactly once per message, and unparseable ones into `chat_dead_letter`.
 *
 * Exactly once, across reruns, retries and crashes: messages are read in stream-sequence order
 * with an ordered consumer starting after the highest sequence already archived (read with FINAL,
 * since ReplacingMergeTree only deduplicates on merge) or heartbeated, whichever is higher. Each
 * batch asks ClickHouse which of its sequences either table already holds and writes only the
 * others, dead letters first; every insert is one block, which ClickHouse commits whole or not at
 * all. So an attempt that died after any insert neither repeats nor skips a message.
 * @throws non-retryable `UnknownOrganization` when the organization's tables do not exist.
 */
export async function archiveOrganizationChat(
  deps: ChatArchiveActivityDeps,
  input: ArchiveOrganizationChatInput,
): Promise<ArchiveChatResult> {
  const ctx = Context.current();
  const map = organizationDataMap(input.orgId, deps.model);
  const orgId = map.orgId;
  const stream = chatStreamOf(map);
  const { database, chatArchiveTable, deadLetterTable } = map.clickhouse;
  const archive = quoteClickHouseQualified(database, chatArchiveTable);
  const deadLetter = quoteClickHouseQualified(database, deadLetterTable);
  const streamLiteral = quoteClickHouseString(stream.stream);
  const ch = deps.clickhouse;
  const cutoffMs = Date.now() - input.olderThanMs;
  const skippedResult = (): ArchiveChatResult => ({
    orgId,
    stream: stream.stream,
    cutoff: new Date(cutoffMs).toISOString(),
    read: 0,
    archived: 0,
    deadLettered: 0,
    alreadyArchived: 0,
    highestSequenceBySubject: {},
    lastSequence: 0,
    skipped: SKIPPED_SEALED,
  });
  // A sealed organization is being purged: its tables may be gone already, so nothing is read.
  if ((await whileNotSealed(deps.postgres, map, async () => undefined)).sealed) return skippedResult();

  const query = async <T>(sql: string, schema: z.ZodType<T>, object: string): Promise<T[]> => {
    try {
      const result = await ch.query({ query: sql, format: 'JSONEachRow' });
      return z.array(schema).parse(await result.json<unknown>());
    } catch (err) {
      throw classifyClickHouseError(err, orgId, object);
    }
  };

  for (const table of [chatArchiveTable, deadLetterTable]) {
    const [exists] = await query(
      `EXISTS TABLE ${quoteClickHouseIdent(database)}.${quoteClickHouseIdent(table)}`,
      existsRow,
      `${database}.${table}`,
    );
    if (exists?.result !== 1) {
      throw permanentFailure(
        FailureType.UnknownOrganization,
        `table ${database}.${table} does not exist; the organization has no chat archive`,
        {
          store: 'clickhouse',
          orgId,
          object: `${database}.${table}`,
        },
      );
    }
  }

  const highestBySubject = async (): Promise<Record<string, number>> => {
    const rows = await query(
      `SELECT subject, max(seq) AS seq FROM ${archive} FINAL WHERE stream = ${streamLiteral} GROUP BY subject ORDER BY subject`,
      maxSeqRow,
      `${database}.${chatArchiveTable}`,
    );
    return Object.fromEntries(rows.map((r) => [r.subject, r.seq]));
  };

  const previous = heartbeatSchema.safeParse(ctx.info.heartbeatDetails);
  const state: ArchiveHeartbeat = previous.success
    ? previous.data
    : { lastSequence: 0, read: 0, archived: 0, deadLettered: 0, alreadyArchived: 0 };
  const archivedMax = Math.max(0, ...Object.values(await highestBySubject()));
  const startSequence = Math.max(archivedMax, state.lastSequence) + 1;
  ctx.heartbeat(state);

  const existing = async (table: string, name: string, lo: number, hi: number): Promise<Set<number>> => {
    const final = name === chatArchiveTable ? ' FINAL' : '';
    const rows = await query(
      `SELECT DISTINCT seq FROM ${table}${final} WHERE stream = ${streamLiteral} AND seq BETWEEN ${lo} AND ${hi}`,
      seqRow,
      `${database}.${name}`,
    );
    return new Set(rows.map((r) => r.seq));
  };
  const insert = async (table: string, name: string, values: Array<Record<string, string | number>>): Promise<void> => {
    if (values.length === 0) return;
    try {
      await ch.insert({ table, values, format: 'JSONEachRow' });
    } catch (err) {
      throw classifyClickHouseError(err, orgId, `${database}.${name}`);
    }
  };

  /** Set when the organization was sealed for its deletion: the archival stops before the next batch. */
  let sealed = false;
  const flush = async (batch: ReadMessage[]): Promise<void> => {
    const first = batch[0];
    const last = batch[batch.length - 1];
    if (!first || !last) return;
    const [inArchive, inDeadLetter] = await Promise.all([
      existing(archive, chatArchiveTable, first.seq, last.seq),
      existing(deadLetter, deadLetterTable, first.seq, last.seq),
    ]);
    const nowSeconds = Math.floor(Date.now() / 1000);
    const archiveRows: Array<Record<string, string | number>> = [];
    const deadRows: Array<Record<string, string | number>> = [];
    for (const m of batch) {
      if (inArchive.has(m.seq) || inDeadLetter.has(m.seq)) {
        state.alreadyArchived++;
        continue;
      }
      const verdict = judge(m.data);
      if (verdict.ok) {
        archiveRows.push({
          stream: stream.stream,
          seq: m.seq,
          subject: m.subject,
          payload: verdict.payload,
          published_at: m.publishedAtSeconds,
          archived_at: nowSeconds,
        });
      } else {
        deadRows.push({
          stream: stream.stream,
          seq: m.seq,
          subject: m.subject,
          payload: verdict.payload,
          error: verdict.error,
          failed_at: nowSeconds,
        });
      }
    }
    // Dead letters first: if the archive insert then fails, the retry finds them and skips them.
    // Under the organization row's share lock: a deletion's seal waits for this batch, and no batch
    // is written after it (the deletion's last backup must hold every archived message).
    const fenced = await whileNotSealed(deps.postgres, map, async () => {
      await insert(deadLetter, deadLetterTable, deadRows);
      await insert(archive, chatArchiveTable, archiveRows);
    });
    if (fenced.sealed) {
      sealed = true;
      return;
    }
    state.archived += archiveRows.length;
    state.deadLettered += deadRows.length;
    state.lastSequence = last.seq;
    ctx.heartbeat(state);
  };

  const nc = await deps.nats.connection();
  const counts = await organizationSubjectCounts(await jetstreamManager(nc), stream);
  const total = counts === undefined ? 0 : [...counts.values()].reduce((a, b) => a + b, 0);
  if (total > 0) {
    const consumer = await jetstream(nc).consumers.get(stream.stream, {
      filter_subjects: stream.filterSubject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: startSequence,
    });
    const subjectStart = `${stream.subjectPrefix}.`.length;
    try {
      let done = false;
      while (!done && !sealed) {
        if (ctx.cancellationSignal.aborted) throw ctx.cancellationSignal.reason;
        const messages = await consumer.fetch({ max_messages: input.batchSize, expires: FETCH_EXPIRES_MS });
        const batch: ReadMessage[] = [];
        let received = 0;
        for await (const m of messages as AsyncIterable<JsMsg>) {
          received++;
          const publishedMs = Math.floor(m.info.timestampNanos / 1_000_000);
          if (publishedMs > cutoffMs) {
            // Sequence order is publication order: every later message is younger still.
            done = true;
            break;
          }
          state.read++;
          batch.push({
            seq: m.seq,
            subject: m.subject.slice(subjectStart),
            data: m.data,
            publishedAtSeconds: Math.floor(publishedMs / 1000),
          });
          if (m.info.pending === 0) {
            done = true;
            break;
          }
        }
        if (done) await messages.close().catch(() => undefined);
        if (received === 0) done = true;
        await flush(batch);
      }
    } finally {
      await consumer.delete().catch(() => undefined);
    }
  }

  const highestSequenceBySubject = await highestBySubject();
  return {
    orgId,
    ...(sealed ? { skipped: SKIPPED_SEALED } : {}),
    stream: stream.stream,
    cutoff: new Date(cutoffMs).toISOString(),
    read: state.read,
    archived: state.archived,
    deadLettered: state.deadLettered,
    alreadyArchived: state.alreadyArchived,
    highestSequenceBySubject,
    lastSequence: Math.max(state.lastSequence, archivedMax, ...Object.values(highestSequenceBySubject)),
  };
}

/** The chat archive activities, merged into the worker's activities by `activities/index.ts`. */
export function createChatArchiveActivities(deps: ChatArchiveActivityDeps) {
  return {
    /** See {@link archiveOrganizationChat}. */
    async archiveOrganizationChat(input: ArchiveOrganizationChatInput): Promise<ArchiveChatResult> {
      return archiveOrganizationChat(deps, input);
    },
  };
}
