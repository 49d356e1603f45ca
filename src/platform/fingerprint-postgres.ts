import { createHash } from 'node:crypto';
import type { Pool, PoolClient, QueryResult } from 'pg';
import type { DumpedSequence } from './archive-sequences';
import { ORG_PLACEHOLDER, type OrganizationDataMap } from './data-map';
import { listOrgSchemas, listRelations, TYPE_COMPONENTS_SQL } from './discovery';
import { formatHash } from './content-hash';
import type { ObjectFingerprint } from './fingerprint';
import { sharedTableSql } from './platform-schema';
import {
  CURRENT_POSTGRES_PRIVILEGE_FINGERPRINT,
  CURRENT_POSTGRES_ROW_HASH,
  type PostgresPrivilegeFingerprint,
  type PostgresRowHash,
} from '../contracts/backup';
import { errorCodes, FailureType, permanentFailure } from '../errors';
import { inTransaction } from './pg-transaction';
import { privilegesFingerprint, readPostgresPrivileges } from './postgres-privileges';
import { quotePgIdent, quotePgLiteral, quotePgQualified } from './quoting';

/*
 * How rows of the organization's own tables are hashed (`PostgresRowHash`). A manifest records the
 * one its fingerprint used, so a backup is always checked with the algorithm it was fingerprinted with.
 * - `md5-text`: md5 of the row's text. Rendering every value as text dominates the cost.
 * - `record-hash`: `hash_record_extended` (PostgreSQL 14+), each column type's own 64-bit hash; about
 *   5x cheaper on wide tables. A table with a column type that has no extended hash function (json,
 *   point, xml) falls back to `md5-text`, decided by the column types alone, so a restored copy
 *   falls back the same way. Flawed: an enum's hash is its label's OID in `pg_enum`, a regclass's
 *   the table's OID, so such a table never matches a restored copy (kept for older manifests).
 * - `portable-record-hash`: `record-hash`, except that a column whose type holds catalog ids anywhere
 *   inside it (an enum, an OID alias such as regclass, aclitem; or an array, domain, composite, range
 *   or multirange over one) is hashed by its text form, which names what the OID stands for. A table
 *   without such columns hashes exactly as under `record-hash`. Text forms that session settings
 *   change (search_path for regclass, TimeZone for the md5 fallback, …) are pinned for the fingerprint.
 * Sequences and shared-table rows are small and always use `md5-text`.
 */

/**
 * Types whose values are catalog OIDs: what they point at keeps its name across a dump and restore,
 * but not its OID. `oid` and `oidvector` values are restored as the same numbers, so either hash is
 * stable; they are in the list because their meaning is a catalog id all the same.
 */
const CATALOG_ID_TYPES = [
  'oid',
  'oidvector',
  'regclass',
  'regcollation',
  'regconfig',
  'regdictionary',
  'regnamespace',
  'regoper',
  'regoperator',
  'regproc',
  'regprocedure',
  'regrole',
  'regtype',
  'aclitem',
];

/**
 * Per column of table $1 (a regclass) in physical order: whether its type contains, at any depth, an
 * enum or a type of $2 in pg_catalog. Walks array elements, domain base types, composite attributes,
 * range subtypes and a multirange's range; `UNION` stops a walk at a type already seen.
 */
const COLUMNS_HASHED_BY_TEXT_SQL = `
  WITH RECURSIVE parts(attnum, typ) AS (
    SELECT attnum, atttypid FROM pg_catalog.pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped
    UNION
    SELECT p.attnum, inner_type.typ FROM parts p JOIN pg_catalog.pg_type t ON t.oid = p.typ
     CROSS JOIN LATERAL (${TYPE_COMPONENTS_SQL}) inner_type(typ)
  )
  SELECT a.attname, bool_or(t.typtype = 'e' OR (t.typnamespace = 'pg_catalog'::regnamespace AND t.typname = ANY($2))) AS by_text
    FROM pg_catalog.pg_attribute a JOIN parts p ON p.attnum = a.attnum JOIN pg_catalog.pg_type t ON t.oid = p.typ
   WHERE a.attrelid = $1::regclass
   GROUP BY a.attnum, a.attname ORDER BY a.attnum`;

/**
 * Settings that change text forms, pinned for a `portable-record-hash` fingerprint so that the
 * platform database and a scratch database render values alike whatever their defaults.
 */
export const PORTABLE_TEXT_SETTINGS: ReadonlyArray<[string, string]> = [
  ['search_path', 'pg_catalog'],
  ['TimeZone', 'UTC'],
  ['DateStyle', 'ISO, YMD'],
  ['IntervalStyle', 'postgres'],
  ['extra_float_digits', '1'],
  ['bytea_output', 'hex'],
  ['lc_monetary', 'C'],
];

/** SQLSTATE of "could not identify an extended hash function for type …". */
const UNDEFINED_FUNCTION = '42883';

/**
 * Sum of the first 60 bits of md5 of each row text, modulo 2^64: order-independent, and a
 * duplicated row adds instead of cancelling (as XOR would). `numeric` cannot overflow.
 */
const rowHashSum = (rowText: string) =>
  `(coalesce(sum(('x' || substr(md5(${rowText}), 1, 15))::bit(60)::bigint::numeric), 0) % 18446744073709551616)`;
/** The same sum over the low 60 bits of each row's `hash_record_extended`. */
const recordHashSum = (row: string) =>
  `(coalesce(sum(hash_record_extended(${row}, 0) & 1152921504606846975), 0) % 18446744073709551616)`;

export interface PostgresFingerprintOptions {
  /**
   * An exported snapshot (`pg_export_snapshot()`) to fingerprint instead of "now": a backup
   * fingerprints exactly the data it dumped.
   */
  snapshotId?: string;
  /** @default CURRENT_POSTGRES_ROW_HASH */
  rowHash?: PostgresRowHash;
  /** Whether a `privileges:` object is added (manifests before it say `none`). @default CURRENT_POSTGRES_PRIVILEGE_FINGERPRINT */
  privileges?: PostgresPrivilegeFingerprint;
  /**
   * Role names of this database mapped to those of the fingerprint compared with: a restore with a
   * role mapping passes it inverted, so the target's `app_eu` hashes as the backup's `app`.
   */
  roleNames?: Record<string, string>;
}

/** The schema name with the organization id mapped out: `org_{org}`, `org_{org}__agents`. */
function schemaObjectName(map: OrganizationDataMap, schema: string): string {
  const main = map.postgres.mainSchema;
  const prefixLength = main.length - map.orgId.length;
  return `${main.slice(0, prefixLength)}${ORG_PLACEHOLDER}${schema.slice(main.length)}`;
}

/**
 * Fingerprints the organization's schemas (every table and sequence) and its rows of the shared
 * tables, all in one REPEATABLE READ snapshot so the objects are consistent with each other.
 * Shared rows are hashed with the key column replaced by `{org}`.
 * @param pool the platform database, or a scratch database holding a restored copy.
 */
export async function fingerprintPostgres(
  pool: Pool,
  map: OrganizationDataMap,
  options: PostgresFingerprintOptions = {},
): Promise<ObjectFingerprint[]> {
  const {
    snapshotId,
    rowHash = CURRENT_POSTGRES_ROW_HASH,
    privileges = CURRENT_POSTGRES_PRIVILEGE_FINGERPRINT,
    roleNames = {},
  } = options;
  if (snapshotId !== undefined && !/^[0-9A-F]+-[0-9A-F]+(-[0-9]+)?$/i.test(snapshotId)) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `snapshotId: not a PostgreSQL snapshot id: ${JSON.stringify(snapshotId.slice(0, 80))}`,
      { store: 'postgres', orgId: map.orgId },
    );
  }
  return inTransaction(
    pool,
    async (client) => {
      // SET TRANSACTION SNAPSHOT takes no parameters; the id was checked above and is quoted anyway.
      if (snapshotId !== undefined) await client.query(`SET TRANSACTION SNAPSHOT ${quotePgLiteral(snapshotId)}`);
      if (rowHash === 'portable-record-hash') {
        for (const [name, value] of PORTABLE_TEXT_SETTINGS)
          await client.query('SELECT pg_catalog.set_config($1, $2, true)', [name, value]);
      }
      const objects: ObjectFingerprint[] = [];
      const schemas = await listOrgSchemas(client, map);
      for (const relation of await listRelations(client, schemas)) {
        const name = `${schemaObjectName(map, relation.schema)}.${relation.name}`;
        const sql = quotePgQualified(relation.schema, relation.name);
        if (relation.kind === 'sequence') {
          // Read now, not as of the snapshot: sequences are not transactional. A backup replaces this
          // with the state its archive holds (withDumpedSequences).
          const r = await client.query<{ last_value: string; is_called: boolean }>(
            `SELECT last_value::text AS last_value, is_called FROM ${sql}`,
          );
          objects.push(sequenceFingerprint(name, r.rows[0]?.last_value ?? '', r.rows[0]?.is_called ?? false));
        } else {
          const r = await hashTableRows(client, sql, rowHash);
          objects.push({
            store: 'postgres',
            object: `schema:${name}`,
            rows: Number(r.rows[0]?.rows ?? 0),
            hash: formatHash(r.rows[0]?.hash ?? '0'),
          });
        }
      }
      if (privileges === 'owners-acls-policies' && schemas.length > 0) {
        const recorded = await readPostgresPrivileges(client, schemas);
        objects.push({ store: 'postgres', ...privilegesFingerprint(map, recorded, (r) => roleNames[r] ?? r) });
      }
      const present = await client.query<{ name: string }>(
        `SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname || '.' || c.relname = ANY($1)`,
        [map.postgres.sharedTables.map((t) => `${t.schema}.${t.table}`)],
      );
      const existing = new Set(present.rows.map((r) => r.name));
      for (const table of map.postgres.sharedTables) {
        if (!existing.has(`${table.schema}.${table.table}`)) continue;
        // jsonb text has sorted keys, and the key column becomes `{org}`: a clone hashes the same.
        const r = await client.query<{ rows: string; hash: string }>(
          `SELECT count(*)::text AS rows, ${rowHashSum(`jsonb_set(to_jsonb(t), ARRAY[$2::text], to_jsonb($3::text))::text`)}::text AS hash
             FROM ${sharedTableSql(table)} t WHERE ${quotePgIdent(table.keyColumn)} = $1`,
          [map.orgId, table.keyColumn, ORG_PLACEHOLDER],
        );
        objects.push({
          store: 'postgres',
          object: `shared:${table.schema}.${table.table}`,
          rows: Number(r.rows[0]?.rows ?? 0),
          hash: formatHash(r.rows[0]?.hash ?? '0'),
        });
      }
      return objects;
    },
    'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  );
}

/**
 * A sequence's state as content (a restored sequence must continue where the original stopped): the
 * `md5-text` hash of `last_value:is_called`, as PostgreSQL would compute it over that one row.
 */
function sequenceFingerprint(name: string, lastValue: string, isCalled: boolean): ObjectFingerprint {
  const md5 = createHash('md5')
    .update(`${lastValue}:${String(isCalled)}`)
    .digest('hex');
  return { store: 'postgres', object: `sequence:${name}`, rows: 1, hash: formatHash(BigInt(`0x${md5.slice(0, 15)}`)) };
}

/**
 * A backup's fingerprint with each sequence's state taken from the archive (what a restore will set)
 * instead of the live read, which is from another moment than pg_dump's: the fingerprint then describes
 * exactly what the backup holds however busy the sequences are.
 * @throws a non-retryable `VerificationFailed` when a sequence is in one of the two and not the other.
 */
export function withDumpedSequences(
  map: OrganizationDataMap,
  objects: readonly ObjectFingerprint[],
  dumped: readonly DumpedSequence[],
): ObjectFingerprint[] {
  const fromArchive = new Map(dumped.map((d) => [`sequence:${schemaObjectName(map, d.schema)}.${d.name}`, d]));
  const result = objects.map((o) => {
    if (!o.object.startsWith('sequence:')) return o;
    const state = fromArchive.get(o.object);
    if (!state)
      throw permanentFailure(FailureType.VerificationFailed, `the pg_dump archive holds no state of ${o.object}`, {
        store: 'postgres',
        orgId: map.orgId,
        object: o.object,
      });
    fromArchive.delete(o.object);
    return sequenceFingerprint(o.object.slice('sequence:'.length), state.lastValue, state.isCalled);
  });
  const extra = [...fromArchive.keys()];
  if (extra.length > 0) {
    throw permanentFailure(
      FailureType.VerificationFailed,
      `the pg_dump archive holds sequences the fingerprint did not find: ${extra.join(', ')}`,
      { store: 'postgres', orgId: map.orgId, object: extra[0] },
    );
  }
  return result;
}

/** Row count and hash sum of one table, with `md5-text` where `record-hash` has no hash function. */
async function hashTableRows(
  client: PoolClient,
  sql: string,
  rowHash: PostgresRowHash,
): Promise<QueryResult<{ rows: string; hash: string }>> {
  const byText = `SELECT count(*)::text AS rows, ${rowHashSum('t::text')}::text AS hash FROM ${sql} t`;
  if (rowHash === 'md5-text') return client.query(byText);
  const row = rowHash === 'portable-record-hash' ? await portableRow(client, sql) : 't';
  // A failed statement aborts the transaction; the savepoint keeps the snapshot usable.
  await client.query('SAVEPOINT record_hash');
  try {
    const result = await client.query<{ rows: string; hash: string }>(
      `SELECT count(*)::text AS rows, ${recordHashSum(row)}::text AS hash FROM ${sql} t`,
    );
    await client.query('RELEASE SAVEPOINT record_hash');
    return result;
  } catch (err: unknown) {
    if (!errorCodes(err).includes(UNDEFINED_FUNCTION)) throw err;
    await client.query('ROLLBACK TO SAVEPOINT record_hash');
    return client.query(byText);
  }
}

/**
 * The row of `t` to hash under `portable-record-hash`: `t` itself when no column holds catalog ids
 * (so the hash equals `record-hash`'s), else `ROW(…)` with those columns cast to text.
 */
async function portableRow(client: PoolClient, sql: string): Promise<string> {
  const columns = await client.query<{ attname: string; by_text: boolean }>(COLUMNS_HASHED_BY_TEXT_SQL, [
    sql,
    CATALOG_ID_TYPES,
  ]);
  if (!columns.rows.some((c) => c.by_text)) return 't';
  return `ROW(${columns.rows.map((c) => `t.${quotePgIdent(c.attname)}${c.by_text ? '::text' : ''}`).join(', ')})`;
}
