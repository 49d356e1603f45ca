import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { FailureType, permanentFailure } from '../../errors';
import { listClickHouseObjects } from '../../platform/clickhouse-catalog';
import { clickHouseDatabaseExists } from '../../platform/discovery';
import type { OrganizationDataMap } from '../../platform/data-map';
import { quoteClickHouseIdent, quoteClickHouseQualified, quoteClickHouseString } from '../../platform/quoting';
import { dropClickHouseDatabase } from './restore';

/*
 * A `replace` restore loads the backup into a staging database on the target server, then moves the
 * tables into place with RENAME TABLE (across databases, supported for MergeTree and Log tables on
 * ClickHouse 18.16 and on modern servers alike), the target's own tables moved into an aside
 * database first. EXCHANGE TABLES would be atomic per pair but exists only for Atomic databases
 * (20.x and later), and ClickHouse 18 has only Ordinary ones, so RENAME is what works on both.
 * What RENAME cannot move is not swapped: ClickHouse 18 refuses to rename a materialized view
 * ("Method rename is not supported by storage MaterializedView"), and views, dictionaries,
 * Distributed, Merge, Buffer and streaming tables name databases in their definition, so moved from
 * staging they would still read staging. An organization with any of those is restored into
 * ClickHouse by the earlier clear-and-load (see {@link swappableEngine}).
 */

/** Aside databases hold a target's original tables; no sweeper of scratch places matches the prefix. */
const ASIDE_DATABASE = /^eloquent_aside_[a-z0-9]{1,24}$/;
/** Staging databases of a swap are scratch databases: dropping one never loses an original. */
const STAGING_DATABASE = /^eloquent_scratch_[a-z0-9_]{1,40}$/;

/**
 * Engines whose tables hold their own rows and name no database: RENAME moves them whole. Not the
 * Replicated ones: a staged copy would register under the original's ZooKeeper path.
 */
export function swappableEngine(engine: string): boolean {
  if (engine.startsWith('Replicated')) return false;
  return /MergeTree$/.test(engine) || engine === 'Log' || engine === 'TinyLog' || engine === 'StripeLog';
}

function assertName(pattern: RegExp, database: string, what: string): void {
  if (!pattern.test(database)) {
    throw permanentFailure(FailureType.InvalidInput, `${what} ${JSON.stringify(database)} must match ${pattern}`, {
      store: 'clickhouse',
      object: database,
    });
  }
}

/**
 * Why the organization's ClickHouse objects cannot be swapped in by RENAME, or undefined when they
 * can: every object, in `database` and in the target, must have a {@link swappableEngine}.
 */
export async function reasonNotSwappable(
  client: ClickHouseClient,
  databases: readonly string[],
): Promise<string | undefined> {
  const refused: string[] = [];
  for (const database of databases) {
    if (!(await clickHouseDatabaseExists(client, database))) continue;
    for (const o of await listClickHouseObjects(client, database)) {
      if (!swappableEngine(o.engine)) refused.push(`${database}.${o.name} (${o.engine})`);
    }
  }
  return refused.length > 0 ? `RENAME TABLE cannot move ${refused.join(', ')}` : undefined;
}

const nameRow = z.object({ name: z.string() });

async function tableNames(client: ClickHouseClient, database: string): Promise<string[]> {
  const result = await client.query({
    query: `SELECT name FROM system.tables WHERE database = ${quoteClickHouseString(database)} ORDER BY name`,
    format: 'JSONEachRow',
  });
  return z
    .array(nameRow)
    .parse(await result.json<unknown>())
    .map((r) => r.name);
}

async function renameAll(client: ClickHouseClient, moves: Array<{ from: string; to: string; name: string }>) {
  if (moves.length === 0) return;
  const pairs = moves.map(
    (m) => `${quoteClickHouseQualified(m.from, m.name)} TO ${quoteClickHouseQualified(m.to, m.name)}`,
  );
  await client.command({ query: `RENAME TABLE ${pairs.join(', ')}` });
}

/**
 * Moves the target's tables into `aside` and the staged tables into the target, in two RENAME
 * statements (the target is briefly empty between them). `stagedTables` is what the staging load
 * created. Idempotent: a table that already moved is not moved again, so a retry after a lost
 * answer or a partial RENAME finishes the swap.
 * @returns the tables now in the target, and the originals now in `aside`.
 */
export async function swapClickHouseTables(
  client: ClickHouseClient,
  map: OrganizationDataMap,
  names: { staging: string; aside: string; stagedTables: readonly string[] },
): Promise<{ swappedIn: string[]; setAside: string[] }> {
  assertName(STAGING_DATABASE, names.staging, 'staging database');
  assertName(ASIDE_DATABASE, names.aside, 'aside database');
  const target = map.clickhouse.database;
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteClickHouseIdent(names.aside)}` });
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteClickHouseIdent(target)}` });
  const stillStaged = await tableNames(client, names.staging);
  // A staged table that left staging is in the target now; every other table there is an original.
  const arrived = new Set(names.stagedTables.filter((t) => !stillStaged.includes(t)));
  const originals = (await tableNames(client, target)).filter((t) => !arrived.has(t));
  await renameAll(
    client,
    originals.map((name) => ({ from: target, to: names.aside, name })),
  );
  await renameAll(
    client,
    stillStaged.map((name) => ({ from: names.staging, to: target, name })),
  );
  return { swappedIn: await tableNames(client, target), setAside: await tableNames(client, names.aside) };
}

/**
 * Undoes {@link swapClickHouseTables} from whatever point it reached: tables that came from staging
 * (`stagedTables`, absent from staging now) go back to staging, then every original in `aside`
 * returns to the target, and the empty aside database is dropped. Idempotent.
 * @returns the originals moved back.
 */
export async function undoClickHouseSwap(
  client: ClickHouseClient,
  map: OrganizationDataMap,
  names: { staging: string; aside: string; stagedTables: readonly string[] },
): Promise<string[]> {
  assertName(STAGING_DATABASE, names.staging, 'staging database');
  assertName(ASIDE_DATABASE, names.aside, 'aside database');
  if (!(await clickHouseDatabaseExists(client, names.aside))) return [];
  const target = map.clickhouse.database;
  const setAside = await tableNames(client, names.aside);
  const inTarget = new Set(await tableNames(client, target));
  const stillStaged = new Set(await tableNames(client, names.staging));
  const arrived = names.stagedTables.filter((t) => !stillStaged.has(t) && inTarget.has(t));
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${quoteClickHouseIdent(names.staging)}` });
  await renameAll(
    client,
    arrived.map((name) => ({ from: target, to: names.staging, name })),
  );
  await renameAll(
    client,
    setAside.map((name) => ({ from: names.aside, to: target, name })),
  );
  await dropClickHouseDatabase(client, names.aside);
  return setAside;
}

/** Drops the aside database of a finished swap, originals and all; gone already is fine. */
export async function dropClickHouseAside(client: ClickHouseClient, aside: string): Promise<void> {
  assertName(ASIDE_DATABASE, aside, 'aside database');
  await dropClickHouseDatabase(client, aside);
}

/** What {@link stageClickHouseSwap} did: staged tables to swap in, or why the swap is not possible. */
export type ClickHouseStaging = { swappable: true; stagedTables: string[] } | { swappable: false; reason: string };

const countRow = z.object({ rows: z.union([z.string(), z.number()]) });

/**
 * Loads a backup's ClickHouse part into `staging` on the target server (the target untouched) and
 * checks each staged table holds the rows the manifest records, a cheap check: the staged proof
 * already compared the content. Returns `swappable: false` (staging dropped) when the target or the
 * backup has an object RENAME cannot move.
 * @param load the restore into `staging` (restore.ts `restoreClickHouse` with `scratchDatabase`).
 */
export async function stageClickHouseSwap(
  client: ClickHouseClient,
  map: OrganizationDataMap,
  staging: string,
  manifestRows: ReadonlyMap<string, number | null>,
  load: () => Promise<unknown>,
): Promise<ClickHouseStaging> {
  assertName(STAGING_DATABASE, staging, 'staging database');
  const inTarget = await reasonNotSwappable(client, [map.clickhouse.database]);
  if (inTarget !== undefined) return { swappable: false, reason: inTarget };
  await load();
  const inBackup = await reasonNotSwappable(client, [staging]);
  if (inBackup !== undefined) {
    await dropClickHouseDatabase(client, staging);
    return { swappable: false, reason: inBackup };
  }
  const stagedTables = await tableNames(client, staging);
  for (const table of stagedTables) {
    const expected = manifestRows.get(table);
    if (expected === undefined || expected === null) continue;
    const result = await client.query({
      query: `SELECT count() AS rows FROM ${quoteClickHouseQualified(staging, table)}`,
      format: 'JSONEachRow',
    });
    const rows = Number(z.array(countRow).parse(await result.json<unknown>())[0]?.rows ?? -1);
    if (rows !== expected) {
      throw permanentFailure(
        FailureType.VerificationFailed,
        `staged table ${table} holds ${rows} rows, the backup ${expected}`,
        { store: 'clickhouse', orgId: map.orgId, object: `${staging}.${table}` },
      );
    }
  }
  return { swappable: true, stagedTables };
}
