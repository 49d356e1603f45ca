import type { Pool, PoolClient } from 'pg';
import { FailureType, permanentFailure } from '../../errors';
import {
  rolesNamed,
  type AclEntry,
  type OwnedObject,
  type PostgresCatalog,
  type PostgresPrivileges,
} from '../../platform/postgres-privileges';
import { quotePgIdent, quotePgLiteral } from '../../platform/quoting';

/**
 * Roles of the backup renamed for the target (`{"app": "app_eu"}`); a role not in it keeps its name.
 * Restoring under other role names is a decision of whoever restores, so it comes as an input.
 */
export type RoleMapping = Record<string, string>;

/**
 * Checks a role mapping against the roles a backup names and the target cluster's roles: every
 * mapped-from role must be one the backup names (a typo would otherwise map nothing), no two roles
 * may map to one (the fingerprint maps the target's roles back), and every role after mapping must
 * exist. Runs before anything changes.
 * @returns the mapping as a function.
 * @throws a non-retryable `RestoreRefused` naming each missing role and how to map it, or
 *   `InvalidInput` naming the mapping's bad entry.
 */
export async function checkRoles(
  db: Pool | PoolClient,
  privileges: PostgresPrivileges,
  mapping: RoleMapping,
  where: { orgId: string; backupId: string },
): Promise<(role: string) => string> {
  const named = rolesNamed(privileges);
  const context = { store: 'postgres' as const, orgId: where.orgId, object: 'roles' };
  const targets = new Map<string, string>();
  for (const [from, to] of Object.entries(mapping)) {
    if (!named.includes(from)) {
      throw permanentFailure(
        FailureType.InvalidInput,
        `roleMapping.${from}: backup ${where.orgId}/${where.backupId} names no role ${JSON.stringify(from)} (it names ${named.join(', ') || 'none'})`,
        context,
      );
    }
    if (typeof to !== 'string' || to === '') {
      throw permanentFailure(FailureType.InvalidInput, `roleMapping.${from}: expected a role name`, context);
    }
    const other = targets.get(to);
    if (other !== undefined) {
      throw permanentFailure(
        FailureType.InvalidInput,
        `roleMapping: ${JSON.stringify(other)} and ${JSON.stringify(from)} both map to ${JSON.stringify(to)}; map each role to a role of its own`,
        context,
      );
    }
    targets.set(to, from);
  }
  const mapRole = (role: string) => mapping[role] ?? role;
  const wanted = [...new Set(named.map(mapRole))];
  const present = await db.query<{ rolname: string }>(
    'SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY($1)',
    [wanted],
  );
  const existing = new Set(present.rows.map((r) => r.rolname));
  const missing = named.filter((r) => !existing.has(mapRole(r)));
  if (missing.length > 0) {
    throw permanentFailure(
      FailureType.RestoreRefused,
      `backup ${where.orgId}/${where.backupId} grants to or is owned by roles the target server does not have: ${missing
        .map((r) =>
          mapRole(r) === r ? JSON.stringify(r) : `${JSON.stringify(r)} (mapped to ${JSON.stringify(mapRole(r))})`,
        )
        .join(
          ', ',
        )}; create them, or map each to an existing role with "roleMapping": {"<role in the backup>": "<role on the target>"}; nothing was changed`,
      context,
    );
  }
  return mapRole;
}

/** The keyword GRANT uses for an object kind. */
function grantKeyword(kind: OwnedObject['kind']): string {
  switch (kind) {
    case 'VIEW':
    case 'MATERIALIZED VIEW':
    case 'FOREIGN TABLE':
      return 'TABLE';
    case 'AGGREGATE':
      return 'FUNCTION';
    case 'DOMAIN':
      return 'TYPE';
    default:
      return kind;
  }
}

/** The privilege keyword, checked against what aclexplode prints (it comes from a backup). */
function privilegeSql(privilege: string): string {
  if (!/^[A-Z]+( [A-Z]+)*$/.test(privilege)) throw new Error(`not a privilege: ${JSON.stringify(privilege)}`);
  return privilege;
}

/**
 * Applies a backup's owners, ACLs, default privileges, row security flags and policies to the
 * restored objects, each role passed through `mapRole`, in the client's transaction. pg_restore ran
 * with `--no-owner --no-privileges` and without the POLICY entries, so every object is the
 * restoring role's with default ACLs until now. The identities were printed by PostgreSQL itself
 * (regclass, regprocedure, …) and are used as SQL as they are: the archive they came with is
 * authenticated the same way (manifest checksums), and they name objects of the restored schemas.
 */
export async function applyPrivileges(
  client: PoolClient,
  catalog: PostgresCatalog,
  mapRole: (role: string) => string,
): Promise<number> {
  const role = (r: string | null) => (r === null ? 'PUBLIC' : quotePgIdent(mapRole(r)));
  const grants = (on: string, acl: readonly AclEntry[], column?: string) =>
    acl.map(
      (e) =>
        `GRANT ${privilegeSql(e.privilege)}${column !== undefined ? ` (${quotePgIdent(column)})` : ''} ON ${on} TO ${role(e.grantee)}${e.grantable ? ' WITH GRANT OPTION' : ''}`,
    );
  const statements: string[] = [];
  // Owners first: an owner's own privileges are part of the ACL set after it.
  for (const o of catalog.objects) {
    if (o.ownerFollowsTable) continue;
    statements.push(`ALTER ${o.kind} ${o.identity} OWNER TO ${role(o.owner)}`);
  }
  for (const o of catalog.objects) {
    if (o.kind === 'COLLATION') continue;
    const on = `${grantKeyword(o.kind)} ${o.identity}`;
    if (o.acl !== null) {
      // From the default to exactly the recorded list.
      statements.push(`REVOKE ALL ON ${on} FROM PUBLIC`, `REVOKE ALL ON ${on} FROM ${role(o.owner)}`);
      statements.push(...grants(on, o.acl));
    }
    for (const c of o.columnAcls ?? []) statements.push(...grants(on, c.acl, c.column));
    if (o.rowSecurity?.enabled) statements.push(`ALTER TABLE ${o.identity} ENABLE ROW LEVEL SECURITY`);
    if (o.rowSecurity?.forced) statements.push(`ALTER TABLE ${o.identity} FORCE ROW LEVEL SECURITY`);
    if (o.kind === 'SCHEMA' && typeof o.comment === 'string') {
      statements.push(`COMMENT ON SCHEMA ${o.identity} IS ${quotePgLiteral(o.comment)}`);
    }
  }
  for (const d of catalog.defaultAcls) {
    for (const e of d.acl) {
      statements.push(
        `ALTER DEFAULT PRIVILEGES FOR ROLE ${role(d.role)} IN SCHEMA ${quotePgIdent(d.schema)} GRANT ${privilegeSql(e.privilege)} ON ${d.objects} TO ${role(e.grantee)}${e.grantable ? ' WITH GRANT OPTION' : ''}`,
      );
    }
  }
  for (const p of catalog.policies) {
    const roles = p.roles.length > 0 ? p.roles.map(role).join(', ') : 'PUBLIC';
    statements.push(
      `CREATE POLICY ${quotePgIdent(p.name)} ON ${p.table} AS ${p.permissive ? 'PERMISSIVE' : 'RESTRICTIVE'} FOR ${p.command} TO ${roles}` +
        (p.using !== null ? ` USING (${p.using})` : '') +
        (p.withCheck !== null ? ` WITH CHECK (${p.withCheck})` : ''),
    );
  }
  // Names in the identities and expressions are schema-qualified for this search path.
  await client.query("SELECT pg_catalog.set_config('search_path', 'pg_catalog', true)");
  for (const statement of statements) await client.query(statement);
  return statements.length;
}
