import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import type { Pool, PoolClient } from 'pg';
import type { OrganizationDataMap } from './data-map';
import { OPS_SCHEMA } from './ops-schema';
import { queryWithoutJit } from './pg-transaction';
import { quoteClickHouseString, quotePgIdent, quotePgQualified } from './quoting';

/**
 * The types a type is made of, one level down (an array's element, a domain's base, a composite's
 * attributes, a range's subtype, a multirange's range), as the body of a `CROSS JOIN LATERAL` over
 * `pg_type t`: a recursive CTE over it reaches every type a column holds. Shared by the fingerprint
 * (which columns to hash by text) and discovery (which types of other schemas an organization uses).
 */
export const TYPE_COMPONENTS_SQL = `
  SELECT t.typelem WHERE t.typelem <> 0
  UNION ALL SELECT t.typbasetype WHERE t.typbasetype <> 0
  UNION ALL SELECT a.atttypid FROM pg_catalog.pg_attribute a WHERE t.typrelid <> 0 AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL SELECT r.rngsubtype FROM pg_catalog.pg_range r WHERE r.rngtypid = t.oid
  UNION ALL SELECT r.rngtypid FROM pg_catalog.pg_range r WHERE r.rngmultitypid = t.oid`;

/**
 * The organization's PostgreSQL schemas that exist, sorted. Compared exactly (no LIKE: `_` is a
 * LIKE wildcard, so `org_ab%` would also catch `org_abc`), then checked by the data map.
 */
export async function listOrgSchemas(db: Pool | PoolClient, map: OrganizationDataMap): Promise<string[]> {
  const main = map.postgres.mainSchema;
  const result = await db.query<{ nspname: string }>(
    `SELECT nspname FROM pg_namespace WHERE nspname = $1 OR left(nspname, length($2)) = $2 ORDER BY nspname`,
    [main, map.postgres.suffixSchemaPrefix],
  );
  return result.rows.map((r) => r.nspname).filter((name) => map.postgres.isOrgSchema(name));
}

/** A table or sequence in one of the organization's schemas. */
export interface PgRelation {
  schema: string;
  name: string;
  kind: 'table' | 'sequence';
}

/** Tables (plain and partitioned parents) and sequences in the given schemas, sorted by schema and name. */
export async function listRelations(db: Pool | PoolClient, schemas: readonly string[]): Promise<PgRelation[]> {
  if (schemas.length === 0) return [];
  const result = await db.query<{ schema: string; name: string; relkind: string }>(
    `SELECT n.nspname AS schema, c.relname AS name, c.relkind::text AS relkind
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'S') AND NOT c.relispartition
      ORDER BY 1, 2`,
    [schemas],
  );
  return result.rows.map((r) => ({ schema: r.schema, name: r.name, kind: r.relkind === 'S' ? 'sequence' : 'table' }));
}

/** True when the ClickHouse database exists (ClickHouse 18 has no `EXISTS DATABASE`). */
export async function clickHouseDatabaseExists(client: ClickHouseClient, database: string): Promise<boolean> {
  const result = await client.query({
    query: `SELECT name FROM system.databases WHERE name = ${quoteClickHouseString(database)}`,
    format: 'JSONEachRow',
  });
  return (await result.json<unknown>()).length > 0;
}

/** True when the pattern is a glob (SCAN is needed) rather than one exact key. */
function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

/**
 * Every key matching `pattern`, found with SCAN (never KEYS, which blocks the server). An exact key
 * is checked with EXISTS instead of scanning the whole keyspace. A pattern is matched against every
 * key of the server, so each call walks the whole keyspace: 10,000 keys a call (a few milliseconds
 * of the server's time each) made it 30 % faster than 1,000 at 40,000 keys, a thousand
 * organizations' worth (bench:platform: 185 ms of each small organization's backup).
 */
export async function scanRedisKeys(redis: Redis, pattern: string, batch = 10_000): Promise<string[]> {
  if (!isGlob(pattern)) return (await redis.exists(pattern)) === 1 ? [pattern] : [];
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', batch);
    for (const key of found) keys.add(key);
    cursor = next;
  } while (cursor !== '0');
  return [...keys].sort();
}

/** A table outside the organization's schemas and the data map that holds rows of the organization. */
export interface OutsideTable {
  /** `schema.table`, quoted where needed. */
  table: string;
  column: string;
  /** How it was found: `foreign key <name> to public.organizations (id)`, or `column org_id`. */
  found: string;
}

/**
 * Tables outside the organization's schemas and outside the model's shared tables that hold rows of
 * the organization: by a foreign key to a shared table's key column (`public.organizations (id)`,
 * `public.users (org_id, …)`), or by a column named like a shared table's key column (`org_id`) whose
 * value is the organization's id. Only tables that hold such rows now are listed: no backup holds
 * them, and a deletion would remove them (ON DELETE CASCADE) or fail on them.
 */
export async function findOutsideTablesWithOrganizationRows(
  db: Pool | PoolClient,
  map: OrganizationDataMap,
): Promise<OutsideTable[]> {
  const shared = map.postgres.sharedTables;
  const declared = new Set(shared.map((t) => `${t.schema}.${t.table}`));
  const own = new Set(map.postgres.schemas);
  const orgKeyColumns = [...new Set(shared.slice(1).map((t) => t.keyColumn))];
  const candidates = await db.query<{ schema: string; table: string; column: string; found: string }>(
    `SELECT cn.nspname AS schema, c.relname AS table, a.attname AS column,
            'foreign key ' || quote_ident(k.conname) || ' to ' || pn.nspname || '.' || p.relname || ' (' || fa.attname || ')' AS found
       FROM pg_catalog.pg_constraint k
       JOIN pg_catalog.pg_class c ON c.oid = k.conrelid JOIN pg_catalog.pg_namespace cn ON cn.oid = c.relnamespace
       JOIN pg_catalog.pg_class p ON p.oid = k.confrelid JOIN pg_catalog.pg_namespace pn ON pn.oid = p.relnamespace
      CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS u(ck, fk)
       JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.ck
       JOIN pg_catalog.pg_attribute fa ON fa.attrelid = k.confrelid AND fa.attnum = u.fk
      WHERE k.contype = 'f' AND NOT c.relispartition AND pn.nspname || '.' || p.relname || '.' || fa.attname = ANY($1)
     UNION
     SELECT n.nspname, c.relname, a.attname, 'column ' || quote_ident(a.attname)
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
        AND a.attname = ANY($2) AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'
      ORDER BY 1, 2, 3`,
    [shared.map((t) => `${t.schema}.${t.table}.${t.keyColumn}`), orgKeyColumns],
  );
  const found: OutsideTable[] = [];
  const seen = new Set<string>();
  for (const c of candidates.rows) {
    if (own.has(c.schema) || map.postgres.isOrgSchema(c.schema) || c.schema === OPS_SCHEMA) continue;
    if (declared.has(`${c.schema}.${c.table}`)) continue;
    const table = `${quotePgIdentForMessage(c.schema)}.${quotePgIdentForMessage(c.table)}`;
    if (seen.has(table)) continue;
    const holds = await db.query<{ holds: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${quotePgQualified(c.schema, c.table)} WHERE ${quotePgIdent(c.column)}::text = $1) AS holds`,
      [map.orgId],
    );
    if (holds.rows[0]?.holds !== true) continue;
    seen.add(table);
    found.push({ table, column: c.column, found: c.found });
  }
  return found;
}

/** A column of the organization's tables that points at large objects, which no pg_dump of schemas holds. */
export interface LargeObjectColumn {
  column: string;
  largeObjects: number;
}

/** Columns of type `oid` (or a domain over it, such as the `lo` extension's) whose values are large objects. */
export async function findLargeObjectColumns(
  db: Pool | PoolClient,
  schemas: readonly string[],
): Promise<LargeObjectColumn[]> {
  if (schemas.length === 0) return [];
  const columns = await db.query<{ schema: string; table: string; column: string }>(
    `SELECT n.nspname AS schema, c.relname AS table, a.attname AS column
       FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
      WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
        AND (a.atttypid = 'pg_catalog.oid'::pg_catalog.regtype OR (t.typtype = 'd' AND t.typbasetype = 'pg_catalog.oid'::pg_catalog.regtype))
      ORDER BY 1, 2, 3`,
    [schemas],
  );
  const found: LargeObjectColumn[] = [];
  for (const c of columns.rows) {
    const r = await db.query<{ n: string }>(
      `SELECT count(*)::text AS n FROM ${quotePgQualified(c.schema, c.table)}
        WHERE ${quotePgIdent(c.column)}::pg_catalog.oid IN (SELECT oid FROM pg_catalog.pg_largeobject_metadata)`,
    );
    const n = Number(r.rows[0]?.n ?? 0);
    if (n > 0)
      found.push({
        column: `${quotePgIdentForMessage(c.schema)}.${quotePgIdentForMessage(c.table)}.${quotePgIdentForMessage(c.column)}`,
        largeObjects: n,
      });
  }
  return found;
}

/** A type from another schema that the organization's objects use: from an extension, or a stray. */
export interface ForeignType {
  type: string;
  /** The first column, domain or range of the organization found using it. */
  usedBy: string;
  extension?: { name: string; schema: string; version: string };
}

/**
 * The walk of {@link findForeignTypes}, `$1` the organization's schemas: every type its columns,
 * domains and ranges reach, down through elements, bases, attributes and subtypes, that lives in
 * another schema. The planner estimates millions of rows for it (see `queryWithoutJit`).
 */
export const FOREIGN_TYPES_SQL = `WITH RECURSIVE roots(used_by, typ) AS (
       SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname) || '.' || quote_ident(a.attname), a.atttypid
         FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
       UNION ALL
       SELECT quote_ident(n.nspname) || '.' || quote_ident(t.typname), t.typbasetype
         FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = ANY($1) AND t.typbasetype <> 0
       UNION ALL
       SELECT quote_ident(n.nspname) || '.' || quote_ident(t.typname), r.rngsubtype
         FROM pg_catalog.pg_range r JOIN pg_catalog.pg_type t ON t.oid = r.rngtypid
         JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = ANY($1)
     ), parts(used_by, typ) AS (
       SELECT used_by, typ FROM roots
       UNION
       SELECT p.used_by, inner_type.typ FROM parts p JOIN pg_catalog.pg_type t ON t.oid = p.typ
        CROSS JOIN LATERAL (${TYPE_COMPONENTS_SQL}) inner_type(typ)
     )
     SELECT DISTINCT ON (t.oid) quote_ident(n.nspname) || '.' || quote_ident(t.typname) AS type, p.used_by,
            e.extname::text AS extname, en.nspname::text AS extschema, e.extversion AS extversion
       FROM parts p JOIN pg_catalog.pg_type t ON t.oid = p.typ JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
       LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.objid = t.oid
             AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND d.deptype = 'e'
       LEFT JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
       LEFT JOIN pg_catalog.pg_namespace en ON en.oid = e.extnamespace
      WHERE n.nspname <> ALL($1) AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        -- An array type is judged by its element, which the walk reaches too.
        AND NOT (t.typelem <> 0 AND t.typlen = -1 AND t.typcategory = 'A')
      ORDER BY t.oid, p.used_by`;

/**
 * Types outside the organization's schemas and `pg_catalog` used by its columns (at any depth:
 * arrays, domains, composites, ranges), each with the extension it belongs to, if any. An extension's
 * type is recreated by creating the extension; any other type lives in no backup of the organization.
 */
export async function findForeignTypes(db: Pool | PoolClient, schemas: readonly string[]): Promise<ForeignType[]> {
  if (schemas.length === 0) return [];
  const result = await queryWithoutJit<{
    type: string;
    used_by: string;
    extname: string | null;
    extschema: string | null;
    extversion: string | null;
  }>(db, FOREIGN_TYPES_SQL, [schemas]);
  return result.rows
    .map((r) => ({
      type: r.type,
      usedBy: r.used_by,
      ...(r.extname !== null
        ? { extension: { name: r.extname, schema: r.extschema ?? '', version: r.extversion ?? '' } }
        : {}),
    }))
    .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

/** An object outside the organization's schemas that depends on one inside them. */
export interface OutsideDependent {
  /** `view public.v`, `table constraint x_fk on public.x`, … (pg_identify_object). */
  dependent: string;
  /** What it depends on inside the organization's schemas. */
  on: string;
}

/**
 * Objects outside `schemas` that depend on objects inside them (`pg_depend`, normal and automatic
 * dependencies): what `DROP SCHEMA … CASCADE` of these schemas would also drop — a view in `public`
 * over the organization's table, a foreign key from another schema, a publication of its table.
 */
export async function findOutsideDependents(
  db: Pool | PoolClient,
  schemas: readonly string[],
): Promise<OutsideDependent[]> {
  if (schemas.length === 0) return [];
  const result = await db.query<{ dependent: string; on: string }>(
    `WITH org_ns AS (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = ANY($1)),
     org_objects(classid, objid) AS (
       SELECT 'pg_catalog.pg_namespace'::pg_catalog.regclass, oid FROM org_ns
       UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, oid FROM pg_catalog.pg_class WHERE relnamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, oid FROM pg_catalog.pg_type WHERE typnamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, oid FROM pg_catalog.pg_proc WHERE pronamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, oid FROM pg_catalog.pg_collation WHERE collnamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_constraint'::pg_catalog.regclass, oid FROM pg_catalog.pg_constraint WHERE connamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, oid FROM pg_catalog.pg_operator WHERE oprnamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_opfamily'::pg_catalog.regclass, oid FROM pg_catalog.pg_opfamily WHERE opfnamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_opclass'::pg_catalog.regclass, oid FROM pg_catalog.pg_opclass WHERE opcnamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_ts_config'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_config WHERE cfgnamespace IN (SELECT oid FROM org_ns)
       UNION ALL SELECT 'pg_catalog.pg_ts_dict'::pg_catalog.regclass, oid FROM pg_catalog.pg_ts_dict WHERE dictnamespace IN (SELECT oid FROM org_ns)
     ),
     dependents AS (
       SELECT d.*,
         CASE d.classid
           WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN (SELECT relnamespace FROM pg_catalog.pg_class WHERE oid = d.objid)
           WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class WHERE r.oid = d.objid)
           WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_trigger r JOIN pg_catalog.pg_class c ON c.oid = r.tgrelid WHERE r.oid = d.objid)
           WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_policy r JOIN pg_catalog.pg_class c ON c.oid = r.polrelid WHERE r.oid = d.objid)
           WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN (SELECT c.relnamespace FROM pg_catalog.pg_attrdef r JOIN pg_catalog.pg_class c ON c.oid = r.adrelid WHERE r.oid = d.objid)
           WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN (SELECT connamespace FROM pg_catalog.pg_constraint WHERE oid = d.objid)
           WHEN 'pg_catalog.pg_type'::pg_catalog.regclass THEN (SELECT typnamespace FROM pg_catalog.pg_type WHERE oid = d.objid)
           WHEN 'pg_catalog.pg_proc'::pg_catalog.regclass THEN (SELECT pronamespace FROM pg_catalog.pg_proc WHERE oid = d.objid)
           WHEN 'pg_catalog.pg_amop'::pg_catalog.regclass THEN (SELECT f.opfnamespace FROM pg_catalog.pg_amop o JOIN pg_catalog.pg_opfamily f ON f.oid = o.amopfamily WHERE o.oid = d.objid)
           WHEN 'pg_catalog.pg_amproc'::pg_catalog.regclass THEN (SELECT f.opfnamespace FROM pg_catalog.pg_amproc o JOIN pg_catalog.pg_opfamily f ON f.oid = o.amprocfamily WHERE o.oid = d.objid)
           WHEN 'pg_catalog.pg_default_acl'::pg_catalog.regclass THEN (SELECT defaclnamespace FROM pg_catalog.pg_default_acl WHERE oid = d.objid)
           ELSE (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname = (pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid)).schema)
         END AS dependent_ns
         FROM pg_catalog.pg_depend d JOIN org_objects o ON d.refclassid = o.classid AND d.refobjid = o.objid
        WHERE d.deptype IN ('n', 'a')
     )
     SELECT x.type || ' ' || x.identity AS dependent, min(r.type || ' ' || r.identity) AS on
       FROM dependents d
      -- A view depends through its rewrite rule: name the view. Identities are always schema-qualified.
      CROSS JOIN LATERAL pg_catalog.pg_identify_object(
              CASE WHEN d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN 'pg_catalog.pg_class'::pg_catalog.regclass ELSE d.classid END,
              CASE WHEN d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN (SELECT ev_class FROM pg_catalog.pg_rewrite WHERE oid = d.objid) ELSE d.objid END,
              0) x
      CROSS JOIN LATERAL pg_catalog.pg_identify_object(d.refclassid, d.refobjid, d.refobjsubid) r
      WHERE d.dependent_ns IS NULL OR d.dependent_ns NOT IN (SELECT oid FROM org_ns)
      GROUP BY 1 ORDER BY 1`,
    [schemas],
  );
  return result.rows;
}

/** A name as it reads in a message: bare when it needs no quotes. */
function quotePgIdentForMessage(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : quotePgIdent(name);
}
