import type { ClickHouseClient } from '@clickhouse/client';
import type { PoolClient } from 'pg';
import { z } from 'zod';
import type { ClickHouseRowHash } from '../contracts/backup';
import { formatHash } from './content-hash';
import { organizationDataMap, type PlatformModel } from './data-map';
import type { ObjectFingerprint } from './fingerprint';
import { compareObjectFingerprints, describeDifferences } from './fingerprint-compare';
import { fingerprintClickHouse } from './fingerprint-clickhouse';
import { PORTABLE_TEXT_SETTINGS } from './fingerprint-postgres';
import { isOrgId } from './org-id';
import { quotePgIdent, quotePgQualified } from './quoting';

/**
 * Fingerprints of what belongs to no organization, for the whole-platform dump: every table outside
 * the organizations' schemas, in every database, the rows of the shared tables that name no
 * organization, and every ClickHouse database that is not an organization's. Organizations
 * themselves are fingerprinted by fingerprint-postgres.ts and fingerprint-clickhouse.ts.
 */

/** The organization a PostgreSQL schema belongs to, by the data map's naming rule; `undefined` for any other schema. */
export function organizationOfSchema(schema: string, model: PlatformModel): string | undefined {
  const { schemaPrefix, suffixSeparator } = model.postgres;
  if (!schema.startsWith(schemaPrefix)) return undefined;
  const rest = schema.slice(schemaPrefix.length);
  const cut = rest.indexOf(suffixSeparator);
  const id = cut === -1 ? rest : rest.slice(0, cut);
  if (!isOrgId(id)) return undefined;
  return organizationDataMap(id, model).postgres.isOrgSchema(schema) ? id : undefined;
}

/** The organization a ClickHouse database belongs to; `undefined` for any other database. */
export function organizationOfClickHouseDatabase(database: string, model: PlatformModel): string | undefined {
  const prefix = model.clickhouse.databasePrefix;
  if (!database.startsWith(prefix)) return undefined;
  const id = database.slice(prefix.length);
  return isOrgId(id) ? id : undefined;
}

/**
 * Every organization of a PostgreSQL database: the keys of the first shared table (the organization
 * rows) and the owners of organization schemas, sorted.
 */
export async function listPostgresOrganizations(client: PoolClient, model: PlatformModel): Promise<string[]> {
  const ids = new Set<string>();
  const schemas = await client.query<{ nspname: string }>('SELECT nspname FROM pg_namespace');
  for (const { nspname } of schemas.rows) {
    const id = organizationOfSchema(nspname, model);
    if (id !== undefined) ids.add(id);
  }
  const table = model.postgres.sharedTables[0];
  if (table) {
    const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS present', [
      quotePgQualified(table.schema, table.table),
    ]);
    if (exists.rows[0]?.present) {
      const rows = await client.query<{ id: string }>(
        `SELECT DISTINCT ${quotePgIdent(table.keyColumn)}::text AS id FROM ${quotePgQualified(table.schema, table.table)}`,
      );
      for (const { id } of rows.rows) if (isOrgId(id)) ids.add(id);
    }
  }
  return [...ids].sort();
}

/** `sum of 60-bit md5 prefixes of each row's text mod 2^64`, as fingerprint-postgres.ts' `md5-text`. */
const ROW_TEXT_HASH_SUM = `(coalesce(sum(('x' || substr(md5(t::text), 1, 15))::bit(60)::bigint::numeric), 0) % 18446744073709551616)`;

/**
 * Every table of the database outside the organizations' schemas: row count and the sum of a hash
 * of each row's text (text settings pinned, so two servers render alike). A shared table of the data
 * map counts only its rows whose key is NULL: the others are fingerprinted with their organization.
 * `organizationsHere: false` (a database other than the platform's) fingerprints every table.
 * Run it inside the transaction whose snapshot the dump used. Objects are `pg:<database>/<schema>.<table>`.
 */
export async function fingerprintPostgresOutsideOrganizations(
  client: PoolClient,
  database: string,
  model: PlatformModel,
  options: { organizationsHere: boolean } = { organizationsHere: true },
): Promise<ObjectFingerprint[]> {
  for (const [name, value] of PORTABLE_TEXT_SETTINGS)
    await client.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
  const tables = await client.query<{ schema: string; name: string }>(
    `SELECT n.nspname AS schema, c.relname AS name
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
        AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
      ORDER BY 1, 2`,
  );
  // Outside the platform database nothing is an organization's, whatever its name.
  const shared = new Map(
    options.organizationsHere ? model.postgres.sharedTables.map((t) => [`${t.schema}.${t.table}`, t.keyColumn]) : [],
  );
  const objects: ObjectFingerprint[] = [];
  for (const table of tables.rows) {
    if (options.organizationsHere && organizationOfSchema(table.schema, model) !== undefined) continue;
    const key = shared.get(`${table.schema}.${table.name}`);
    const where = key === undefined ? '' : ` WHERE ${quotePgIdent(key)} IS NULL`;
    // Partitioned parents include their partitions' rows; partitions are not listed on their own.
    const r = await client.query<{ rows: string; hash: string }>(
      `SELECT count(*)::text AS rows, ${ROW_TEXT_HASH_SUM}::text AS hash FROM ${quotePgQualified(table.schema, table.name)} t${where}`,
    );
    objects.push({
      store: 'postgres',
      object: `pg:${database}/${table.schema}.${table.name}`,
      rows: Number(r.rows[0]?.rows ?? 0),
      hash: formatHash(r.rows[0]?.hash ?? '0'),
    });
  }
  return objects;
}

const databaseRow = z.object({ name: z.string() });

/** ClickHouse's own databases, never dumped or restored. */
export const CLICKHOUSE_SYSTEM_DATABASES: readonly string[] = ['system', 'INFORMATION_SCHEMA', 'information_schema'];

/** Every database of the ClickHouse server but the system ones, sorted. */
export async function listClickHouseDatabases(client: ClickHouseClient): Promise<string[]> {
  const result = await client.query({
    query: 'SELECT name FROM system.databases ORDER BY name',
    format: 'JSONEachRow',
  });
  return z
    .array(databaseRow)
    .parse(await result.json<unknown>())
    .map((r) => r.name)
    .filter((name) => !CLICKHOUSE_SYSTEM_DATABASES.includes(name));
}

/**
 * The tables of a ClickHouse database that belongs to no organization, fingerprinted like an
 * organization's (fingerprint-clickhouse.ts), objects named `clickhouse:<database>/<table>`.
 */
export async function fingerprintClickHouseDatabase(
  client: ClickHouseClient,
  database: string,
  rowHash: ClickHouseRowHash,
  model: PlatformModel,
): Promise<ObjectFingerprint[]> {
  // fingerprintClickHouse reads the data map only for the database name, which `database` replaces.
  const anyMap = organizationDataMap('platform', model);
  const objects = await fingerprintClickHouse(client, anyMap, { database, rowHash });
  return objects.map((o) => ({ ...o, object: `clickhouse:${database}/${o.object.replace(/^clickhouse:/, '')}` }));
}

/** What a platform restore holds compared with what its dump held, per organization and outside them. */
export interface PlatformComparison {
  organizations: Array<{ orgId: string; outcome: 'matches' | 'deleted' | 'differs'; differences?: string[] }>;
  platformDifferences: string[];
  /** Objects outside the organizations that were compared. */
  platformObjects: number;
}

/**
 * Compares a restored store with its dump's fingerprints. An organization in `deleted` must be
 * absent from the restored copy (its deletion was applied again); every other organization of the
 * dump must be there with equal objects, and no organization may appear that the dump did not hold.
 */
export function comparePlatformFingerprints(
  expected: {
    organizations: ReadonlyArray<{ orgId: string; objects: ObjectFingerprint[] }>;
    platformObjects: ObjectFingerprint[];
  },
  actual: {
    organizations: ReadonlyArray<{ orgId: string; objects: ObjectFingerprint[] }>;
    platformObjects: ObjectFingerprint[];
  },
  deleted: readonly string[],
): PlatformComparison {
  const found = new Map(actual.organizations.map((o) => [o.orgId, o.objects]));
  const organizations: PlatformComparison['organizations'] = [];
  for (const org of expected.organizations) {
    const objects = found.get(org.orgId);
    found.delete(org.orgId);
    if (deleted.includes(org.orgId)) {
      organizations.push(
        objects === undefined || objects.every((o) => o.rows === 0)
          ? { orgId: org.orgId, outcome: 'deleted' }
          : {
              orgId: org.orgId,
              outcome: 'differs',
              differences: ['deleted organization is present after the restore'],
            },
      );
      continue;
    }
    const differences = describeDifferences(compareObjectFingerprints(org.objects, objects ?? []));
    organizations.push(
      differences.length === 0
        ? { orgId: org.orgId, outcome: 'matches' }
        : { orgId: org.orgId, outcome: 'differs', differences },
    );
  }
  for (const [orgId] of found)
    organizations.push({
      orgId,
      outcome: 'differs',
      differences: ['organization not in the backup is present after the restore'],
    });
  return {
    organizations,
    platformDifferences: describeDifferences(
      compareObjectFingerprints(expected.platformObjects, actual.platformObjects),
    ),
    platformObjects: expected.platformObjects.length,
  };
}
