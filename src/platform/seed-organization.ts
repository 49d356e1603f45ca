import { inTransaction } from './pg-transaction';
import { createHash } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { PoolClient } from 'pg';
import type { StoreClients } from '../store-clients';
import { DEFAULT_PLATFORM_MODEL, organizationDataMap, type OrganizationDataMap, type PlatformModel } from './data-map';
import { listOrgSchemas, scanRedisKeys } from './discovery';
import { ensurePlatformSchema, ensureStreams, isStreamNotFound, sharedTableSql } from './platform-schema';
import {
  quoteClickHouseIdent,
  quoteClickHouseQualified,
  quoteClickHouseString,
  quotePgIdent,
  quotePgQualified,
} from './quoting';

/** How big a seeded organization is. */
export type SeedScale = 'small' | 'medium' | 'large';

/**
 * The order rows, messages and keys are written in. Content is the same in every order; only the
 * physical order differs, which is what the fingerprint must not see.
 */
export type InsertionOrder = 'forward' | 'reverse' | 'shuffled';

/** Row, message and key counts per scale. */
export interface ScaleSizes {
  users: number;
  entities: number;
  /** 32-character chunks of filler text per entity description: how `large` reaches its gigabyte. */
  entityPaddingChunks: number;
  agentConfigurations: number;
  workflowStates: number;
  agentRuns: number;
  kgNodes: number;
  kgEdges: number;
  analyticsEvents: number;
  chatArchive: number;
  deadLetters: number;
  chatMessages: number;
  contextMessages: number;
  statsMessages: number;
  cacheEntries: number;
  sessions: number;
}

/** small: seconds, for tests. medium: ~100k PostgreSQL rows, ~1M ClickHouse rows. large: >1 GB PostgreSQL, >10M ClickHouse rows. */
export const SCALE_SIZES: Record<SeedScale, ScaleSizes> = {
  small: {
    users: 12,
    entities: 200,
    entityPaddingChunks: 2,
    agentConfigurations: 40,
    workflowStates: 200,
    agentRuns: 150,
    kgNodes: 200,
    kgEdges: 300,
    analyticsEvents: 500,
    chatArchive: 100,
    deadLetters: 10,
    chatMessages: 60,
    contextMessages: 25,
    statsMessages: 25,
    cacheEntries: 50,
    sessions: 10,
  },
  medium: {
    users: 500,
    entities: 50_000,
    entityPaddingChunks: 4,
    agentConfigurations: 5_000,
    workflowStates: 30_000,
    agentRuns: 15_000,
    kgNodes: 200_000,
    kgEdges: 300_000,
    analyticsEvents: 480_000,
    chatArchive: 20_000,
    deadLetters: 1_000,
    chatMessages: 3_000,
    contextMessages: 1_000,
    statsMessages: 1_000,
    cacheEntries: 2_000,
    sessions: 200,
  },
  large: {
    users: 5_000,
    entities: 2_000_000,
    entityPaddingChunks: 12,
    agentConfigurations: 50_000,
    workflowStates: 1_000_000,
    agentRuns: 500_000,
    kgNodes: 2_000_000,
    kgEdges: 3_000_000,
    analyticsEvents: 5_800_000,
    chatArchive: 200_000,
    deadLetters: 10_000,
    chatMessages: 20_000,
    contextMessages: 5_000,
    statsMessages: 5_000,
    cacheEntries: 20_000,
    sessions: 2_000,
  },
};

/** Options of {@link seedOrganization}. */
export interface SeedOptions {
  scale: SeedScale;
  /** Content depends only on this (not on the org id), so two orgs with one seed are clones. @default '1' */
  seed?: string | number;
  /** @default 'forward' */
  insertionOrder?: InsertionOrder;
  /** @default DEFAULT_PLATFORM_MODEL */
  model?: PlatformModel;
  /** Overrides counts of the scale, e.g. for a test that needs exactly N messages. */
  sizes?: Partial<ScaleSizes>;
}

/** What one seeding wrote. */
export interface SeedReport {
  orgId: string;
  scale: SeedScale;
  seed: string;
  sizes: ScaleSizes;
  /** Wall time per store, in milliseconds. */
  durationsMs: { postgres: number; clickhouse: number; queue: number; redis: number };
}

/** Deterministic PRNG (mulberry32): the same seed gives the same sequence on every machine. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit number derived from the seed text and a purpose, so each store gets its own stream. */
function seedNumber(seed: string, purpose: string): number {
  return createHash('sha256').update(`${seed}:${purpose}`).digest().readUInt32BE(0);
}

/** Indices 0..n-1 in the requested order; `shuffled` is a seeded Fisher-Yates shuffle. */
function orderedIndices(n: number, order: InsertionOrder, seed: string): number[] {
  const indices = Array.from({ length: n }, (_, i) => i);
  if (order === 'reverse') return indices.reverse();
  if (order === 'shuffled') {
    const random = mulberry32(seedNumber(seed, 'shuffle'));
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [indices[i], indices[j]] = [indices[j] as number, indices[i] as number];
    }
  }
  return indices;
}

const UNICODE_NAMES = [
  'Zürich office',
  '東京 branch',
  'Café Ümlaut',
  'Ωmega entity',
  'naïve façade',
  '😀 smile',
  'Plain name',
  'Ελληνικά',
  'Кириллица',
];

/** SQL text array literal of fixed words; the words are constants of this file, never input. */
function pgWords(words: readonly string[]): string {
  return `ARRAY[${words.map((w) => `'${w.replace(/'/g, "''")}'`).join(', ')}]::text[]`;
}

function chWords(words: readonly string[]): string {
  return `[${words.map((w) => quoteClickHouseString(w)).join(', ')}]`;
}

/** ORDER BY clause of a generate_series insert for the requested order. */
function pgOrder(order: InsertionOrder): string {
  if (order === 'reverse') return 'ORDER BY g DESC';
  if (order === 'shuffled') return "ORDER BY md5($1 || ':shuffle:' || g)";
  return 'ORDER BY g';
}

/** A deterministic non-negative 28-bit integer from the seed ($1), a tag and the row number g. */
function pgRandom(tag: string): string {
  return `('x0' || substr(md5($1 || ':${tag}:' || g), 1, 7))::bit(32)::int`;
}

/**
 * Removes everything {@link seedOrganization} creates for the organization, in every store:
 * its schemas, shared rows (children first), ClickHouse database, messages and keys. Removing
 * what is already gone succeeds. Not the durable deletion workflow: no backup, no certificate.
 */
export async function dropSeededOrganization(
  clients: StoreClients,
  orgId: string,
  model: PlatformModel = DEFAULT_PLATFORM_MODEL,
): Promise<void> {
  const map = organizationDataMap(orgId, model);
  await Promise.all([
    dropPostgres(clients, map),
    dropClickHouse(clients, map),
    purgeQueue(clients, map),
    dropRedis(clients, map),
  ]);
}

async function dropPostgres(clients: StoreClients, map: OrganizationDataMap): Promise<void> {
  await inTransaction(clients.postgres, (client) => dropPostgresIn(client, map));
}

async function dropPostgresIn(client: PoolClient, map: OrganizationDataMap): Promise<void> {
  for (const schema of await listOrgSchemas(client, map))
    await client.query(`DROP SCHEMA IF EXISTS ${quotePgIdent(schema)} CASCADE`);
  const exists = await client.query<{ present: boolean }>(
    `SELECT to_regclass('public.organizations') IS NOT NULL AS present`,
  );
  if (exists.rows[0]?.present !== true) return;
  for (const table of [...map.postgres.sharedTables].reverse()) {
    await client.query(`DELETE FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1`, [map.orgId]);
  }
}

async function dropClickHouse(clients: StoreClients, map: OrganizationDataMap): Promise<void> {
  await clients.clickhouse.command({
    query: `DROP DATABASE IF EXISTS ${quoteClickHouseIdent(map.clickhouse.database)}`,
  });
}

async function purgeQueue(clients: StoreClients, map: OrganizationDataMap): Promise<void> {
  const jsm = await jetstreamManager(await clients.nats.connection());
  for (const s of map.queue.streams) {
    try {
      await jsm.streams.purge(s.stream, { filter: s.filterSubject });
    } catch (err) {
      if (!isStreamNotFound(err)) throw err;
    }
  }
}

async function dropRedis(clients: StoreClients, map: OrganizationDataMap): Promise<void> {
  for (const pattern of map.redis.keyPatterns) {
    const keys = await scanRedisKeys(clients.redis, pattern);
    for (let i = 0; i < keys.length; i += 500) await clients.redis.unlink(...keys.slice(i, i + 500));
  }
}

/**
 * Seeds one organization with deterministic pseudo-random data in every store, replacing whatever
 * the organization had (so seeding twice with one seed yields the same content, and two orgs with
 * one seed are clones up to their id). Creates the shared tables and streams when missing.
 * Bulk rows are generated server-side (generate_series, numbers()) from the seed.
 */
export async function seedOrganization(
  clients: StoreClients,
  orgId: string,
  options: SeedOptions,
): Promise<SeedReport> {
  const model = options.model ?? DEFAULT_PLATFORM_MODEL;
  const map = organizationDataMap(orgId, model);
  const seed = String(options.seed ?? '1');
  const order = options.insertionOrder ?? 'forward';
  const sizes: ScaleSizes = { ...SCALE_SIZES[options.scale], ...options.sizes };
  const timed = async (work: () => Promise<void>) => {
    const started = performance.now();
    await work();
    return Math.round(performance.now() - started);
  };
  await ensurePlatformSchema(clients.postgres);
  const [postgres, clickhouse, queue, redis] = await Promise.all([
    timed(() => seedPostgres(clients, map, seed, sizes, order)),
    timed(() => seedClickHouse(clients, map, seed, sizes, order)),
    timed(() => seedQueue(clients, map, model, seed, sizes, order)),
    timed(() => seedRedis(clients, map, seed, sizes, order)),
  ]);
  return { orgId: map.orgId, scale: options.scale, seed, sizes, durationsMs: { postgres, clickhouse, queue, redis } };
}

async function seedPostgres(
  clients: StoreClients,
  map: OrganizationDataMap,
  seed: string,
  sizes: ScaleSizes,
  order: InsertionOrder,
): Promise<void> {
  const main = map.postgres.mainSchema;
  const agents = map.postgres.schemas[1] ?? `${map.postgres.suffixSchemaPrefix}agents`;
  const t = (schema: string, table: string) => quotePgQualified(schema, table);
  const by = pgOrder(order);
  const client = await clients.postgres.connect();
  try {
    await client.query('BEGIN');
    await dropPostgresIn(client, map);
    await client.query(`CREATE SCHEMA ${quotePgIdent(main)}`);
    await client.query(`CREATE SCHEMA ${quotePgIdent(agents)}`);
    await client.query(`
      CREATE TABLE ${t(main, 'entity_definitions')} (
        id uuid PRIMARY KEY, name text NOT NULL, kind text NOT NULL, attributes jsonb NOT NULL,
        tags text[] NOT NULL, description text, created_at timestamptz NOT NULL, updated_at timestamptz);
      CREATE INDEX ON ${t(main, 'entity_definitions')} (kind);
      CREATE TABLE ${t(main, 'agent_configurations')} (
        id uuid PRIMARY KEY, name text NOT NULL, model text NOT NULL, temperature double precision,
        config jsonb NOT NULL, tools text[], enabled boolean NOT NULL, created_at timestamptz NOT NULL, notes text);
      CREATE TABLE ${t(main, 'workflow_state')} (
        id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        entity_id uuid REFERENCES ${t(main, 'entity_definitions')} (id), state text NOT NULL, step integer NOT NULL,
        context jsonb, started_at timestamptz NOT NULL, finished_at timestamptz);
      CREATE TABLE ${t(agents, 'agent_runs')} (
        id bigint PRIMARY KEY, agent_id uuid NOT NULL REFERENCES ${t(main, 'agent_configurations')} (id),
        input text NOT NULL, output jsonb, tokens integer, started_at timestamptz NOT NULL, duration interval);`);
    // Shared rows: ids and values come from the seed only, so an org seeded under another id is a clone.
    await client.query(
      `INSERT INTO public.organizations (id, name, status, plan, settings, created_at)
       VALUES ($2, 'Organization ' || substr(md5($1 || ':org'), 1, 8), 'active', 'enterprise',
               jsonb_build_object('region', 'eu-central', 'features', ARRAY['chat', 'graph'], 'seed', $1::text), timestamptz '2023-05-01 09:00:00+00')`,
      [seed, map.orgId],
    );
    await client.query(
      `INSERT INTO public.users (org_id, id, email, display_name, created_at, last_login_at)
       SELECT $2, md5($1 || ':u:' || g)::uuid, 'user' || g || '@example.com',
              (${pgWords(UNICODE_NAMES)})[1 + g % ${UNICODE_NAMES.length}] || ' ' || g,
              timestamptz '2023-06-01 00:00:00+00' + g * interval '1 hour',
              CASE WHEN g % 4 = 0 THEN NULL ELSE timestamptz '2024-06-01 00:00:00+00' + g * interval '1 minute' END
         FROM generate_series(1, $3) g ${by}`,
      [seed, map.orgId, sizes.users],
    );
    await client.query(
      `INSERT INTO public.user_roles (org_id, user_id, role)
       SELECT $2, md5($1 || ':u:' || g)::uuid, r
         FROM generate_series(1, $3) g, LATERAL (VALUES ('member'), (CASE WHEN g % 5 = 0 THEN 'admin' END)) v(r)
        WHERE r IS NOT NULL ${by}`,
      [seed, map.orgId, sizes.users],
    );
    await client.query(
      `INSERT INTO public.api_keys (org_id, id, user_id, name, hashed_key, created_at)
       SELECT $2, md5($1 || ':k:' || g)::uuid, md5($1 || ':u:' || (1 + g % $3))::uuid, 'key ' || g,
              decode(md5($1 || ':secret:' || g), 'hex'), timestamptz '2024-01-01 00:00:00+00' + g * interval '1 day'
         FROM generate_series(1, greatest($3 / 3, 1)) g ${by}`,
      [seed, map.orgId, sizes.users],
    );
    await client.query(
      `INSERT INTO ${t(main, 'entity_definitions')} (id, name, kind, attributes, tags, description, created_at, updated_at)
       SELECT md5($1 || ':e:' || g)::uuid,
              (${pgWords(UNICODE_NAMES)})[1 + g % ${UNICODE_NAMES.length}] || ' #' || g,
              (${pgWords(['person', 'company', 'product', 'document', 'location'])})[1 + ${pgRandom('kind')} % 5],
              jsonb_build_object('score', ${pgRandom('score')} % 1000, 'active', g % 3 = 0, 'label', substr(md5($1 || ':l:' || g), 1, 12),
                                 'nested', jsonb_build_object('level', g % 5, 'path', ARRAY['a', 'b', (g % 10)::text]),
                                 'ratio', (${pgRandom('ratio')} % 10000) / 100.0, 'note', CASE WHEN g % 6 = 0 THEN NULL ELSE 'ünïcödé ✓' END),
              ARRAY['tag' || (g % 11), 'tag' || (g % 13), 'étiquette'],
              CASE WHEN g % 9 = 0 THEN NULL ELSE repeat(md5($1 || ':d:' || g), $3) END,
              timestamptz '2024-01-01 00:00:00+00' + g * interval '61 seconds',
              CASE WHEN g % 4 = 0 THEN NULL ELSE timestamptz '2024-06-01 00:00:00+00' + g * interval '17 seconds' END
         FROM generate_series(1, $2) g ${by}`,
      [seed, sizes.entities, sizes.entityPaddingChunks],
    );
    await client.query(
      `INSERT INTO ${t(main, 'agent_configurations')} (id, name, model, temperature, config, tools, enabled, created_at, notes)
       SELECT md5($1 || ':a:' || g)::uuid, 'agent ' || g || ' — ' || (${pgWords(UNICODE_NAMES)})[1 + g % ${UNICODE_NAMES.length}],
              (${pgWords(['gpt-4o', 'claude-3', 'llama-3', 'mistral-large'])})[1 + ${pgRandom('model')} % 4],
              CASE WHEN g % 7 = 0 THEN NULL ELSE (${pgRandom('temp')} % 100) / 100.0 END,
              jsonb_build_object('max_tokens', 256 * (1 + g % 8), 'stop', jsonb_build_array('\\n', '###'), 'system', 'Du bist hilfsbereit. ' || g),
              CASE WHEN g % 5 = 0 THEN NULL ELSE ARRAY['search', 'graph_query', 'calc'] END,
              g % 4 <> 0, timestamptz '2024-02-01 00:00:00+00' + g * interval '5 minutes',
              CASE WHEN g % 3 = 0 THEN NULL ELSE 'notes ' || md5($1 || ':n:' || g) END
         FROM generate_series(1, $2) g ${by}`,
      [seed, sizes.agentConfigurations],
    );
    // Ids given explicitly so content does not depend on insertion order; the sequence is then set past them.
    await client.query(
      `INSERT INTO ${t(main, 'workflow_state')} (id, entity_id, state, step, context, started_at, finished_at)
       SELECT g, CASE WHEN g % 10 = 0 THEN NULL ELSE md5($1 || ':e:' || (1 + ${pgRandom('wfe')} % $3))::uuid END,
              (${pgWords(['pending', 'running', 'waiting', 'done', 'failed'])})[1 + g % 5], g % 17,
              CASE WHEN g % 8 = 0 THEN NULL ELSE jsonb_build_object('attempt', g % 3, 'vars', jsonb_build_object('k', md5($1 || ':v:' || g))) END,
              timestamptz '2024-03-01 00:00:00+00' + g * interval '7 seconds',
              CASE WHEN g % 5 IN (0, 1) THEN NULL ELSE timestamptz '2024-03-01 00:00:00+00' + g * interval '7 seconds' + interval '90 seconds' END
         FROM generate_series(1, $2) g ${by}`,
      [seed, sizes.workflowStates, sizes.entities],
    );
    await client.query(`SELECT setval(pg_get_serial_sequence($1, 'id'), $2)`, [
      `${quotePgIdent(main)}.workflow_state`,
      sizes.workflowStates + 1,
    ]);
    await client.query(
      `INSERT INTO ${t(agents, 'agent_runs')} (id, agent_id, input, output, tokens, started_at, duration)
       SELECT g, md5($1 || ':a:' || (1 + ${pgRandom('ra')} % $3))::uuid, 'Frage ' || g || ': ¿qué tal? 你好',
              CASE WHEN g % 6 = 0 THEN NULL ELSE jsonb_build_object('answer', md5($1 || ':o:' || g), 'ok', g % 9 <> 0) END,
              CASE WHEN g % 11 = 0 THEN NULL ELSE ${pgRandom('tok')} % 4000 END,
              timestamptz '2024-04-01 00:00:00+00' + g * interval '3 seconds',
              CASE WHEN g % 4 = 0 THEN NULL ELSE (${pgRandom('dur')} % 60000) * interval '1 millisecond' END
         FROM generate_series(1, $2) g ${by}`,
      [seed, sizes.agentRuns, sizes.agentConfigurations],
    );
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
  await clients.postgres.query(`ANALYZE ${t(main, 'entity_definitions')}`);
}

/**
 * WHERE conditions splitting numbers(N) into chunks inserted one after the other. Several inserts
 * make several parts, so the physical layout differs between orders while the content does not.
 */
function chChunks(order: InsertionOrder, n: number): string[] {
  const half = Math.floor(n / 2);
  if (order === 'reverse') return [`number >= ${half}`, `number < ${half}`];
  if (order === 'shuffled') return ['number % 3 = 2', 'number % 3 = 0', 'number % 3 = 1'];
  return ['1'];
}

async function seedClickHouse(
  clients: StoreClients,
  map: OrganizationDataMap,
  seed: string,
  sizes: ScaleSizes,
  order: InsertionOrder,
): Promise<void> {
  const ch = clients.clickhouse;
  const db = map.clickhouse.database;
  const q = (table: string) => quoteClickHouseQualified(db, table);
  const s = quoteClickHouseString(seed);
  const r = (tag: string) => `cityHash64(${s}, '${tag}', number)`;
  await ch.command({ query: `DROP DATABASE IF EXISTS ${quoteClickHouseIdent(db)}` });
  await ch.command({ query: `CREATE DATABASE ${quoteClickHouseIdent(db)}` });
  const ddl = [
    `CREATE TABLE ${q('kg_nodes')} (id UInt64, label String, kind String, properties String, embedding Array(Float32), created_at DateTime)
       ENGINE = MergeTree ORDER BY id`,
    `CREATE TABLE ${q('kg_edges')} (src UInt64, dst UInt64, kind String, weight Float64, version UInt64)
       ENGINE = ReplacingMergeTree(version) ORDER BY (src, dst, kind)`,
    `CREATE TABLE ${q('analytics_events')} (event_id UInt64, ts DateTime, user_id Nullable(String), event String, props Array(String), value Nullable(Float64))
       ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (ts, event_id)`,
    `CREATE TABLE ${q(map.clickhouse.chatArchiveTable)} (stream String, seq UInt64, subject String, payload String, published_at DateTime, archived_at DateTime)
       ENGINE = ReplacingMergeTree ORDER BY (stream, seq)`,
    `CREATE TABLE ${q(map.clickhouse.deadLetterTable)} (stream String, seq UInt64, subject String, payload String, error String, failed_at DateTime)
       ENGINE = MergeTree ORDER BY (stream, seq)`,
  ];
  for (const query of ddl) await ch.command({ query });
  const inserts: Array<{ n: number; sql: (where: string) => string }> = [
    {
      n: sizes.kgNodes,
      sql: (where) => `INSERT INTO ${q('kg_nodes')} SELECT number + 1,
          concat(${chWords(UNICODE_NAMES)}[number % ${UNICODE_NAMES.length} + 1], ' ', toString(number)),
          ${chWords(['person', 'company', 'topic', 'document'])}[${r('kind')} % 4 + 1],
          concat('{"score":', toString(${r('score')} % 1000), ',"label":"', hex(${r('label')}), '"}'),
          arrayMap(i -> toFloat32((cityHash64(${s}, 'v', number, i) % 1000) / 1000), range(4)),
          toDateTime(1704067200 + number * 13)
        FROM numbers(${sizes.kgNodes}) WHERE ${where}`,
    },
    {
      n: sizes.kgEdges,
      // Keys repeat on purpose (a ReplacingMergeTree collapses them); versions never tie, so the
      // surviving row does not depend on insertion order.
      sql: (where) => `INSERT INTO ${q('kg_edges')} SELECT number % ${Math.max(sizes.kgNodes, 1)} + 1,
          ${r('dst')} % ${Math.max(sizes.kgNodes, 1)} + 1, ${chWords(['knows', 'mentions', 'part_of'])}[${r('ek')} % 3 + 1],
          (${r('w')} % 10000) / 10000, number
        FROM numbers(${sizes.kgEdges}) WHERE ${where}`,
    },
    {
      n: sizes.analyticsEvents,
      sql: (where) => `INSERT INTO ${q('analytics_events')} SELECT number, toDateTime(1704067200 + number * 7),
          if(number % 5 = 0, NULL, concat('user', toString(${r('user')} % ${Math.max(sizes.users, 1)} + 1))),
          ${chWords(['page_view', 'click', 'search', 'chat_started', 'export'])}[${r('ev')} % 5 + 1],
          arrayMap(i -> concat('p', toString(i)), range(number % 4)),
          if(number % 3 = 0, NULL, (${r('val')} % 100000) / 100)
        FROM numbers(${sizes.analyticsEvents}) WHERE ${where}`,
    },
    {
      n: sizes.chatArchive,
      sql: (where) => `INSERT INTO ${q(map.clickhouse.chatArchiveTable)} SELECT 'CHAT', number + 1,
          concat('room_', toString(${r('room')} % 8)), concat('{"text":"Archivierte Nachricht ', toString(number), ' — ✓"}'),
          toDateTime(1704067200 + number * 11), toDateTime(1704067200 + number * 11 + 864000)
        FROM numbers(${sizes.chatArchive}) WHERE ${where}`,
    },
    {
      n: sizes.deadLetters,
      sql: (where) => `INSERT INTO ${q(map.clickhouse.deadLetterTable)} SELECT 'CHAT', number + 1000000,
          concat('room_', toString(number % 8)), '{"text":"broken"}', 'payload rejected: invalid JSON', toDateTime(1704067200 + number * 97)
        FROM numbers(${sizes.deadLetters}) WHERE ${where}`,
    },
  ];
  for (const insert of inserts) {
    if (insert.n === 0) continue;
    for (const where of chChunks(order, insert.n)) await ch.command({ query: insert.sql(where) });
  }
}

/** The organization's messages: subject tail (after `<root>.<id>.`) and payload. */
function queueMessages(seed: string, sizes: ScaleSizes): Array<{ root: string; tail: string; payload: string }> {
  const random = mulberry32(seedNumber(seed, 'queue'));
  const messages: Array<{ root: string; tail: string; payload: string }> = [];
  for (let i = 0; i < sizes.chatMessages; i++) {
    const room = Math.floor(random() * 8);
    const name = UNICODE_NAMES[Math.floor(random() * UNICODE_NAMES.length)] ?? '';
    messages.push({
      root: 'chat',
      tail: `room_${room}`,
      payload: JSON.stringify({
        n: i,
        from: `user${1 + Math.floor(random() * 50)}`,
        text: `Hallo ${name} #${i}`,
        at: 1704067200 + i * 5,
      }),
    });
  }
  for (let i = 0; i < sizes.contextMessages; i++) {
    const agent = Math.floor(random() * 5);
    messages.push({
      root: 'agent_context',
      tail: `agent_${agent}`,
      payload: JSON.stringify({
        n: i,
        turn: Math.floor(random() * 20),
        memory: `context ${Math.floor(random() * 1e9).toString(36)} — 記憶`,
      }),
    });
  }
  for (let i = 0; i < sizes.statsMessages; i++) {
    const metric = ['latency', 'tokens', 'sessions'][Math.floor(random() * 3)] ?? 'latency';
    messages.push({
      root: 'stats',
      tail: metric,
      payload: JSON.stringify({ n: i, value: Math.round(random() * 100000) / 100, at: 1704067200 + i * 60 }),
    });
  }
  return messages;
}

async function seedQueue(
  clients: StoreClients,
  map: OrganizationDataMap,
  model: PlatformModel,
  seed: string,
  sizes: ScaleSizes,
  order: InsertionOrder,
): Promise<void> {
  const nc = await clients.nats.connection();
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm, model);
  // Purge first: a re-seed must leave each message exactly once, not twice.
  await purgeQueue(clients, map);
  const js = jetstream(nc);
  const messages = queueMessages(seed, sizes);
  const prefixOf = new Map(
    model.queue.streams.map((s, i) => [s.subjectRoot, map.queue.streams[i]?.subjectPrefix ?? '']),
  );
  const indices = orderedIndices(messages.length, order, seed);
  const window = 256;
  for (let start = 0; start < indices.length; start += window) {
    await Promise.all(
      indices.slice(start, start + window).map((i) => {
        const m = messages[i];
        if (m === undefined) return Promise.resolve();
        const prefix = prefixOf.get(m.root);
        if (prefix === undefined) return Promise.resolve();
        return js.publish(`${prefix}.${m.tail}`, m.payload);
      }),
    );
  }
}

async function seedRedis(
  clients: StoreClients,
  map: OrganizationDataMap,
  seed: string,
  sizes: ScaleSizes,
  order: InsertionOrder,
): Promise<void> {
  await dropRedis(clients, map);
  const random = mulberry32(seedNumber(seed, 'redis'));
  const cachePrefix = map.redis.keyPatterns.find((p) => p.startsWith('cache:'))?.slice(0, -1) ?? `cache:${map.orgId}:`;
  type Write = (pipeline: ReturnType<StoreClients['redis']['pipeline']>) => void;
  const writes: Write[] = [];
  for (let i = 0; i < sizes.cacheEntries; i++) {
    const value = JSON.stringify({
      entity: i,
      score: Math.floor(random() * 1000),
      label: `caché ${Math.floor(random() * 1e9).toString(36)}`,
    });
    // TTLs of days: entries must outlive any test that fingerprints them.
    const ttlSeconds = 86_400 + Math.floor(random() * 86_400);
    if (i % 10 === 9) {
      writes.push((p) => p.set(`${cachePrefix}entity:${i}`, value)); // some entries never expire
    } else {
      writes.push((p) => p.set(`${cachePrefix}entity:${i}`, value, 'EX', ttlSeconds));
    }
  }
  const sessionIds: string[] = [];
  for (let i = 0; i < sizes.sessions; i++) {
    const sid = createHash('sha256').update(`${seed}:session:${i}`).digest('hex').slice(0, 24);
    sessionIds.push(sid);
    const fields = {
      user_id: `user${1 + Math.floor(random() * 50)}`,
      created_at: String(1704067200 + i * 3600),
      ip: `10.0.${i % 256}.${Math.floor(random() * 255)}`,
      agent: 'Mozilla/5.0 (Ünïcode)',
    };
    writes.push((p) =>
      p.hset(`${map.redis.sessionKeyPrefix}${sid}`, fields).expire(`${map.redis.sessionKeyPrefix}${sid}`, 7 * 86_400),
    );
  }
  if (sessionIds.length > 0) writes.push((p) => p.sadd(map.redis.sessionIndexKey, ...sessionIds));
  const indices = orderedIndices(writes.length, order, seed);
  for (let start = 0; start < indices.length; start += 1000) {
    const pipeline = clients.redis.pipeline();
    for (const i of indices.slice(start, start + 1000)) writes[i]?.(pipeline);
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err !== null);
    if (failed?.[0]) throw failed[0];
  }
}
