import type { PoolClient } from 'pg';
import { z } from 'zod';
import { queryWithoutJit } from './pg-transaction';
import { formatHash, hash60 } from './content-hash';
import type { OrganizationDataMap } from './data-map';
import { quotePgIdent } from './quoting';

/*
 * Privileges are data: who owns each of the organization's objects, what is granted on it, the
 * default privileges of its schemas and its row-level security policies. pg_dump would carry them
 * in ACL / DEFAULT ACL / POLICY entries that name roles, which pg_restore can only restore under the
 * same names; so the backup records them here, structured, in the same snapshot as the dump, and a
 * restore applies them itself with each role mapped (activities/postgres/privileges.ts).
 */

/** One privilege of an ACL; `grantee` null stands for PUBLIC. The grantor is not kept (see README). */
export const aclEntrySchema = z.object({
  grantee: z.string().nullable(),
  privilege: z.string().regex(/^[A-Z ]+$/),
  grantable: z.boolean(),
});
export type AclEntry = z.infer<typeof aclEntrySchema>;

/** Object kinds whose owner and ACL are recorded, as their SQL keyword for ALTER … OWNER. */
export const OWNED_KINDS = [
  'SCHEMA',
  'TABLE',
  'VIEW',
  'MATERIALIZED VIEW',
  'SEQUENCE',
  'FOREIGN TABLE',
  'FUNCTION',
  'PROCEDURE',
  'AGGREGATE',
  'TYPE',
  'DOMAIN',
  'COLLATION',
] as const;

export const ownedObjectSchema = z.object({
  kind: z.enum(OWNED_KINDS),
  /** The object's schema (for a schema: itself). */
  schema: z.string(),
  /** SQL identity as PostgreSQL prints it with `search_path = pg_catalog`: `org_a."Mixed Case"`, `org_a.f(integer)`. */
  identity: z.string(),
  owner: z.string(),
  /**
   * Every privilege, the default ones included (a NULL ACL is read as `acldefault`): pg_dump leaves out
   * an ACL equal to the default, so an explicit default and none must compare equal. null: no ACL (collations).
   */
  acl: z.array(aclEntrySchema).nullable(),
  /** Column privileges of a relation, by column name. */
  columnAcls: z.array(z.object({ column: z.string(), acl: z.array(aclEntrySchema) })).optional(),
  /** Row-level security of a table: enabled and forced. */
  rowSecurity: z.object({ enabled: z.boolean(), forced: z.boolean() }).optional(),
  /** An identity sequence's owner follows its table: ALTER SEQUENCE … OWNER refuses it. */
  ownerFollowsTable: z.boolean().optional(),
  /** A schema's comment: the SCHEMA entries of the archive are not restored (see archive-toc.ts). */
  comment: z.string().nullable().optional(),
});
export type OwnedObject = z.infer<typeof ownedObjectSchema>;

export const defaultAclSchema = z.object({
  role: z.string(),
  schema: z.string(),
  /** TABLES, SEQUENCES, FUNCTIONS or TYPES. */
  objects: z.enum(['TABLES', 'SEQUENCES', 'FUNCTIONS', 'TYPES']),
  acl: z.array(aclEntrySchema),
});
export type DefaultAcl = z.infer<typeof defaultAclSchema>;

export const policySchema = z.object({
  schema: z.string(),
  /** The table's SQL identity, as for {@link OwnedObject.identity}. */
  table: z.string(),
  name: z.string(),
  permissive: z.boolean(),
  command: z.enum(['ALL', 'SELECT', 'INSERT', 'UPDATE', 'DELETE']),
  /** null stands for PUBLIC. */
  roles: z.array(z.string().nullable()),
  using: z.string().nullable(),
  withCheck: z.string().nullable(),
});
export type Policy = z.infer<typeof policySchema>;

/** An extension outside the organization's schemas whose types the organization's objects use. */
export const requiredExtensionSchema = z.object({ name: z.string(), schema: z.string(), version: z.string() });
export type RequiredExtension = z.infer<typeof requiredExtensionSchema>;

/** `postgres/catalog.json` of a backup: what the archive does not hold the way a restore needs it. */
export const postgresCatalogSchema = z.object({
  formatVersion: z.literal(1),
  objects: z.array(ownedObjectSchema),
  defaultAcls: z.array(defaultAclSchema),
  policies: z.array(policySchema),
  extensions: z.array(requiredExtensionSchema),
});
export type PostgresCatalog = z.infer<typeof postgresCatalogSchema>;

/** The privileges part of a catalog (what the fingerprint covers). */
export type PostgresPrivileges = Pick<PostgresCatalog, 'objects' | 'defaultAcls' | 'policies'>;

/** aclexplode(acl) as JSON entries; `grantee` null for PUBLIC (oid 0). */
const ACL_JSON = (acl: string) => `(SELECT coalesce(jsonb_agg(jsonb_build_object(
    'grantee', CASE WHEN x.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(x.grantee)::text END,
    'privilege', x.privilege_type, 'grantable', x.is_grantable)), '[]'::jsonb)
   FROM pg_catalog.aclexplode(${acl}) x)`;

/**
 * Every owned object of the schemas with its owner and ACL. Planned above `jit_above_cost` once the
 * catalog holds a few hundred organizations (the walk over pg_type), so it runs with JIT off: LLVM
 * took 100 ms of its 125-140 ms at 1,000 organizations, twice in every backup (bench:platform).
 */
export const PRIVILEGE_OBJECTS_SQL = `
  SELECT 'SCHEMA' AS kind, n.nspname AS schema, pg_catalog.quote_ident(n.nspname) AS identity,
         pg_catalog.pg_get_userbyid(n.nspowner)::text AS owner, ${ACL_JSON("coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))")} AS acl,
         NULL::jsonb AS column_acls, NULL::boolean AS rls, NULL::boolean AS rls_forced, NULL::boolean AS follows,
         pg_catalog.obj_description(n.oid, 'pg_namespace') AS comment
    FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY($1)
  UNION ALL
  SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                        WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
         n.nspname, c.oid::regclass::text, pg_catalog.pg_get_userbyid(c.relowner)::text,
         ${ACL_JSON("coalesce(c.relacl, pg_catalog.acldefault((CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END)::\"char\", c.relowner))")},
         (SELECT jsonb_agg(jsonb_build_object('column', a.attname, 'acl', ${ACL_JSON('a.attacl')}) ORDER BY a.attnum)
            FROM pg_catalog.pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL),
         CASE WHEN c.relkind IN ('r', 'p') THEN c.relrowsecurity END, CASE WHEN c.relkind IN ('r', 'p') THEN c.relforcerowsecurity END,
         c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_catalog.pg_class'::regclass
                                       AND d.objid = c.oid AND d.deptype = 'i'),
         NULL
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  UNION ALL
  SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
         n.nspname, p.oid::regprocedure::text, pg_catalog.pg_get_userbyid(p.proowner)::text, ${ACL_JSON("coalesce(p.proacl, pg_catalog.acldefault('f', p.proowner))")},
         NULL, NULL, NULL, NULL, NULL
    FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
   WHERE n.nspname = ANY($1)
  UNION ALL
  SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
         n.nspname, t.oid::regtype::text, pg_catalog.pg_get_userbyid(t.typowner)::text, ${ACL_JSON("coalesce(t.typacl, pg_catalog.acldefault('T', t.typowner))")},
         NULL, NULL, NULL, NULL, NULL
    FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
   WHERE n.nspname = ANY($1) AND t.typtype IN ('b', 'd', 'e', 'r', 'c')
     AND (t.typtype <> 'c' OR (SELECT r.relkind FROM pg_catalog.pg_class r WHERE r.oid = t.typrelid) = 'c')
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type e WHERE e.typarray = t.oid)
  UNION ALL
  SELECT 'COLLATION', n.nspname, pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(k.collname),
         pg_catalog.pg_get_userbyid(k.collowner)::text, NULL, NULL, NULL, NULL, NULL, NULL
    FROM pg_catalog.pg_collation k JOIN pg_catalog.pg_namespace n ON n.oid = k.collnamespace
   WHERE n.nspname = ANY($1)
  ORDER BY 1, 3`;

const DEFAULT_ACLS_SQL = `
  SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text AS role, n.nspname AS schema,
         CASE d.defaclobjtype WHEN 'r' THEN 'TABLES' WHEN 'S' THEN 'SEQUENCES' WHEN 'f' THEN 'FUNCTIONS' ELSE 'TYPES' END AS objects,
         ${ACL_JSON('d.defaclacl')} AS acl
    FROM pg_catalog.pg_default_acl d JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
   WHERE n.nspname = ANY($1) AND d.defaclobjtype IN ('r', 'S', 'f', 'T')
   ORDER BY 2, 1, 3`;

const POLICIES_SQL = `
  SELECT n.nspname AS schema, c.oid::regclass::text AS "table", p.polname AS name, p.polpermissive AS permissive,
         CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END AS command,
         (SELECT jsonb_agg(CASE WHEN r = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(r)::text END) FROM unnest(p.polroles) r) AS roles,
         pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using, pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS with_check
    FROM pg_catalog.pg_policy p JOIN pg_catalog.pg_class c ON c.oid = p.polrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE n.nspname = ANY($1)
   ORDER BY 2, 3`;

interface ObjectRow {
  kind: OwnedObject['kind'];
  schema: string;
  identity: string;
  owner: string;
  acl: AclEntry[] | null;
  column_acls: Array<{ column: string; acl: AclEntry[] }> | null;
  rls: boolean | null;
  rls_forced: boolean | null;
  follows: boolean | null;
  comment: string | null;
}

/**
 * Runs `work` with `search_path = pg_catalog` for the current transaction, so every name the catalog
 * prints is schema-qualified, then puts the previous path back.
 */
async function withQualifiedNames<T>(client: PoolClient, work: () => Promise<T>): Promise<T> {
  const before = (await client.query<{ path: string }>("SELECT current_setting('search_path') AS path")).rows[0]?.path;
  await client.query("SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)");
  // On failure the transaction is aborted and the path goes with it: the work's error is what counts.
  const result = await work();
  await client.query('SELECT pg_catalog.set_config($1, $2, true)', ['search_path', before ?? '"$user", public']);
  return result;
}

/**
 * Owners, ACLs, default privileges and policies of every object in `schemas`, read in the client's
 * transaction (a backup's exported snapshot, or a fingerprint's). Sorted, so two reads of equal
 * catalogs are equal.
 */
export async function readPostgresPrivileges(
  client: PoolClient,
  schemas: readonly string[],
): Promise<PostgresPrivileges> {
  if (schemas.length === 0) return { objects: [], defaultAcls: [], policies: [] };
  return withQualifiedNames(client, async () => {
    const objects = (await queryWithoutJit<ObjectRow>(client, PRIVILEGE_OBJECTS_SQL, [schemas])).rows.map(
      (r): OwnedObject => ({
        kind: r.kind,
        schema: r.schema,
        identity: r.identity,
        owner: r.owner,
        acl: r.acl,
        ...(r.column_acls ? { columnAcls: r.column_acls } : {}),
        ...(r.rls !== null ? { rowSecurity: { enabled: r.rls, forced: r.rls_forced === true } } : {}),
        ...(r.follows ? { ownerFollowsTable: true } : {}),
        ...(r.kind === 'SCHEMA' ? { comment: r.comment } : {}),
      }),
    );
    const defaultAcls = (await client.query<DefaultAcl>(DEFAULT_ACLS_SQL, [schemas])).rows;
    const policies = (
      await client.query<Omit<Policy, 'withCheck'> & { with_check: string | null }>(POLICIES_SQL, [schemas])
    ).rows.map(({ with_check, ...p }) => ({ ...p, roles: p.roles ?? [], withCheck: with_check }));
    return { objects, defaultAcls, policies };
  });
}

/** Every role a privilege record names (owners, grantees, default-ACL roles, policy roles), sorted. */
export function rolesNamed(privileges: PostgresPrivileges): string[] {
  const roles = new Set<string>();
  const fromAcl = (acl: readonly AclEntry[] | null | undefined) => {
    for (const e of acl ?? []) if (e.grantee !== null) roles.add(e.grantee);
  };
  for (const o of privileges.objects) {
    roles.add(o.owner);
    fromAcl(o.acl);
    for (const c of o.columnAcls ?? []) fromAcl(c.acl);
  }
  for (const d of privileges.defaultAcls) {
    roles.add(d.role);
    fromAcl(d.acl);
  }
  for (const p of privileges.policies) for (const r of p.roles) if (r !== null) roles.add(r);
  return [...roles].sort();
}

/**
 * The fingerprint object of the organization's privileges: one line per owner, ACL entry, row
 * security flag, default privilege and policy, with schema names mapped out (`org_{org}`) and role
 * names passed through `roleName` (a restore with a role mapping maps the target's roles back), each
 * line hashed (hash60) and summed like rows.
 */
export function privilegesFingerprint(
  map: OrganizationDataMap,
  privileges: PostgresPrivileges,
  roleName: (role: string) => string = (r) => r,
): { object: string; rows: number; hash: string } {
  const schemas = [...new Set(privileges.objects.filter((o) => o.kind === 'SCHEMA').map((o) => o.schema))];
  // Longest first, so `org_a__agents` is replaced before `org_a`.
  const literals = schemas
    .sort((a, b) => b.length - a.length)
    .flatMap((s) => [
      [quotePgIdent(s), map.mapOrgOut(s)],
      [s, map.mapOrgOut(s)],
    ]);
  const unschema = (text: string | null) => {
    if (text === null) return '';
    let out = text;
    for (const [literal, mapped] of literals) out = out.split(literal ?? '').join(mapped ?? '');
    return out;
  };
  const role = (r: string | null) => (r === null ? 'PUBLIC' : roleName(r));
  const acl = (entries: readonly AclEntry[]) =>
    entries.map((e) => `${role(e.grantee)}:${e.privilege}${e.grantable ? '*' : ''}`).sort();
  const lines: string[] = [];
  for (const o of privileges.objects) {
    const id = `${o.kind} ${unschema(o.identity)}`;
    lines.push(`${id} owner ${role(o.owner)}`);
    if (o.acl !== null) lines.push(`${id} acl ${acl(o.acl).join(',')}`);
    for (const c of o.columnAcls ?? []) lines.push(`${id} column ${c.column} acl ${acl(c.acl).join(',')}`);
    if (o.rowSecurity) lines.push(`${id} row security ${o.rowSecurity.enabled} forced ${o.rowSecurity.forced}`);
  }
  for (const d of privileges.defaultAcls)
    lines.push(`default ${role(d.role)} in ${unschema(d.schema)} on ${d.objects} ${acl(d.acl).join(',')}`);
  for (const p of privileges.policies) {
    const roles = p.roles.map(role).sort().join(',');
    lines.push(
      `policy ${p.name} on ${unschema(p.table)} ${p.permissive ? 'permissive' : 'restrictive'} ${p.command} to ${roles} using ${unschema(p.using)} check ${unschema(p.withCheck)}`,
    );
  }
  const sum = lines.reduce((total, line) => total + hash60(line), 0n);
  return { object: `privileges:${map.mapOrgOut(map.postgres.mainSchema)}`, rows: lines.length, hash: formatHash(sum) };
}
