import { jetstreamManager } from '@nats-io/jetstream';
import { z } from 'zod';
import type { StoreClients } from '../store-clients';
import { DEFAULT_PLATFORM_MODEL, organizationDataMap, type PlatformModel } from './data-map';
import { clickHouseDatabaseExists, listOrgSchemas, listRelations, scanRedisKeys } from './discovery';
import { organizationSubjectCounts } from './fingerprint-queue';
import { sharedTableSql } from './platform-schema';
import { quoteClickHouseString, quotePgIdent, quotePgQualified } from './quoting';

/** A PostgreSQL table of the organization. */
export interface DescribedPgTable {
  table: string;
  /** Exact row count. */
  rows: number;
  /** Table, indexes and TOAST, in bytes. */
  bytes: number;
}

/** What exists of one organization, per store. */
export interface OrganizationDescription {
  orgId: string;
  /** False when the organization has nothing in any store (no schema, row, database, message or key). */
  exists: boolean;
  /** ISO-8601 time of the description. */
  describedAt: string;
  postgres: {
    schemas: Array<{ schema: string; tables: DescribedPgTable[] }>;
    /** The organization's rows in each shared table (`public.users`), parents first. */
    sharedRows: Array<{ table: string; rows: number }>;
  };
  clickhouse: {
    database: string;
    exists: boolean;
    /** Rows and bytes of active parts (rows not yet collapsed by merges count). */
    tables: Array<{ table: string; engine: string; rows: number; bytes: number }>;
  };
  queue: {
    streams: Array<{
      stream: string;
      filterSubject: string;
      exists: boolean;
      messages: number;
      subjects: Array<{ subject: string; messages: number }>;
    }>;
  };
  redis: { patterns: Array<{ pattern: string; keys: number }> };
}

const partsRow = z.object({
  table: z.string(),
  engine: z.string(),
  rows: z.union([z.string(), z.number()]),
  bytes: z.union([z.string(), z.number()]),
});

/**
 * Lists what actually exists of an organization in every store. Read-only; never fails because
 * something is missing (that is the answer), only when a store cannot be asked.
 * @throws a non-retryable `InvalidOrganizationId` failure for an invalid id.
 */
export async function describeOrganization(
  clients: StoreClients,
  orgId: string,
  model: PlatformModel = DEFAULT_PLATFORM_MODEL,
): Promise<OrganizationDescription> {
  const map = organizationDataMap(orgId, model);
  const describedAt = new Date().toISOString();

  const postgres = async (): Promise<OrganizationDescription['postgres']> => {
    const schemas = await listOrgSchemas(clients.postgres, map);
    const relations = (await listRelations(clients.postgres, schemas)).filter((r) => r.kind === 'table');
    const described = await Promise.all(
      schemas.map(async (schema) => ({
        schema,
        tables: await Promise.all(
          relations
            .filter((r) => r.schema === schema)
            .map(async (r): Promise<DescribedPgTable> => {
              const q = quotePgQualified(r.schema, r.name);
              const res = await clients.postgres.query<{ rows: string; bytes: string }>(
                `SELECT (SELECT count(*) FROM ${q})::text AS rows, pg_total_relation_size($1::regclass)::text AS bytes`,
                [q],
              );
              return { table: r.name, rows: Number(res.rows[0]?.rows ?? 0), bytes: Number(res.rows[0]?.bytes ?? 0) };
            }),
        ),
      })),
    );
    const sharedRows: Array<{ table: string; rows: number }> = [];
    for (const table of map.postgres.sharedTables) {
      const name = `${table.schema}.${table.table}`;
      const present = await clients.postgres.query<{ present: boolean }>(
        `SELECT to_regclass($1) IS NOT NULL AS present`,
        [quotePgQualified(table.schema, table.table)],
      );
      if (present.rows[0]?.present !== true) continue;
      const res = await clients.postgres.query<{ rows: string }>(
        `SELECT count(*)::text AS rows FROM ${sharedTableSql(table)} WHERE ${quotePgIdent(table.keyColumn)} = $1`,
        [map.orgId],
      );
      sharedRows.push({ table: name, rows: Number(res.rows[0]?.rows ?? 0) });
    }
    return { schemas: described, sharedRows };
  };

  const clickhouse = async (): Promise<OrganizationDescription['clickhouse']> => {
    const database = map.clickhouse.database;
    if (!(await clickHouseDatabaseExists(clients.clickhouse, database))) return { database, exists: false, tables: [] };
    const result = await clients.clickhouse.query({
      query: `SELECT t.name AS table, t.engine AS engine, sum(p.rows) AS rows, sum(p.bytes_on_disk) AS bytes
                FROM system.tables AS t
                LEFT JOIN (SELECT table, rows, bytes_on_disk FROM system.parts WHERE active AND database = ${quoteClickHouseString(database)}) AS p ON p.table = t.name
               WHERE t.database = ${quoteClickHouseString(database)}
               GROUP BY t.name, t.engine ORDER BY t.name`,
      format: 'JSONEachRow',
    });
    const rows = z.array(partsRow).parse(await result.json<unknown>());
    return {
      database,
      exists: true,
      tables: rows.map((r) => ({ table: r.table, engine: r.engine, rows: Number(r.rows), bytes: Number(r.bytes) })),
    };
  };

  const queue = async (): Promise<OrganizationDescription['queue']> => {
    const jsm = await jetstreamManager(await clients.nats.connection());
    const streams = await Promise.all(
      map.queue.streams.map(async (s) => {
        const counts = await organizationSubjectCounts(jsm, s);
        const subjects = [...(counts ?? new Map<string, number>()).entries()]
          .map(([subject, messages]) => ({ subject, messages }))
          .sort((a, b) => (a.subject < b.subject ? -1 : 1));
        return {
          stream: s.stream,
          filterSubject: s.filterSubject,
          exists: counts !== undefined,
          messages: subjects.reduce((n, x) => n + x.messages, 0),
          subjects,
        };
      }),
    );
    return { streams };
  };

  const redis = async (): Promise<OrganizationDescription['redis']> => ({
    patterns: await Promise.all(
      map.redis.keyPatterns.map(async (pattern) => ({
        pattern,
        keys: (await scanRedisKeys(clients.redis, pattern)).length,
      })),
    ),
  });

  const [pg, ch, q, r] = await Promise.all([postgres(), clickhouse(), queue(), redis()]);
  const exists =
    pg.schemas.length > 0 ||
    pg.sharedRows.some((s) => s.rows > 0) ||
    ch.exists ||
    q.streams.some((s) => s.messages > 0) ||
    r.patterns.some((p) => p.keys > 0);
  return { orgId: map.orgId, exists, describedAt, postgres: pg, clickhouse: ch, queue: q, redis: r };
}

/** `1.5 MiB`: sizes for people. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * One line per thing that exists (schema, shared rows, database, stream subjects, key pattern),
 * for messages such as "the target is not empty: …". Empty when nothing exists.
 */
export function summarizeDescription(d: OrganizationDescription): string[] {
  const lines: string[] = [];
  for (const s of d.postgres.schemas) {
    const rows = s.tables.reduce((n, t) => n + t.rows, 0);
    const bytes = s.tables.reduce((n, t) => n + t.bytes, 0);
    lines.push(
      `postgres schema ${s.schema}: ${s.tables.length} table${s.tables.length === 1 ? '' : 's'}, ${rows} rows, ${formatBytes(bytes)}`,
    );
  }
  for (const s of d.postgres.sharedRows)
    if (s.rows > 0) lines.push(`postgres ${s.table}: ${s.rows} row${s.rows === 1 ? '' : 's'} of ${d.orgId}`);
  if (d.clickhouse.exists) {
    const rows = d.clickhouse.tables.reduce((n, t) => n + t.rows, 0);
    const bytes = d.clickhouse.tables.reduce((n, t) => n + t.bytes, 0);
    lines.push(
      `clickhouse database ${d.clickhouse.database}: ${d.clickhouse.tables.length} table${d.clickhouse.tables.length === 1 ? '' : 's'}, ${rows} rows, ${formatBytes(bytes)}`,
    );
  }
  for (const s of d.queue.streams) {
    if (s.messages > 0)
      lines.push(
        `queue ${s.stream} ${s.filterSubject}: ${s.messages} message${s.messages === 1 ? '' : 's'} in ${s.subjects.length} subject${s.subjects.length === 1 ? '' : 's'}`,
      );
  }
  for (const p of d.redis.patterns)
    if (p.keys > 0) lines.push(`redis ${p.pattern}: ${p.keys} key${p.keys === 1 ? '' : 's'}`);
  return lines;
}
