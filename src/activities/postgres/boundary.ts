import type { Pool, PoolClient } from 'pg';
import { FailureType, permanentFailure } from '../../errors';
import type { OrganizationDataMap } from '../../platform/data-map';
import {
  findForeignTypes,
  findLargeObjectColumns,
  findOutsideDependents,
  findOutsideTablesWithOrganizationRows,
  listOrgSchemas,
} from '../../platform/discovery';
import type { RequiredExtension } from '../../platform/postgres-privileges';

/*
 * What the organization owns is discovered from the catalogs, never assumed from the data map: what
 * the map covers is backed up and purged, and anything else that holds or needs the organization's
 * data is refused by name, with how to declare it, before any change — so nothing is ever purged
 * that no backup holds, and no DROP SCHEMA reaches beyond the organization.
 */

/** Why an operation looks at the boundary: a deletion also must not drop anything of others. */
export type BoundaryPurpose = 'backup' | 'deletion' | 'replace';

/**
 * Checks that the organization's PostgreSQL data is exactly what a backup holds and a deletion
 * removes: no table outside its schemas and the model's shared tables holds its rows, no column
 * points at large objects, every type from another schema belongs to an extension; and, before a
 * deletion or a `replace`, that no object outside its schemas depends on one inside them.
 * @returns the extensions whose types the organization's tables use (a restore creates them where missing).
 * @throws a non-retryable `InvalidInput` failure listing every problem and how to resolve it.
 */
export async function checkOrganizationBoundary(
  db: Pool | PoolClient,
  map: OrganizationDataMap,
  purpose: BoundaryPurpose,
): Promise<RequiredExtension[]> {
  const schemas = await listOrgSchemas(db, map);
  const problems: string[] = [];
  for (const t of await findOutsideTablesWithOrganizationRows(db, map)) {
    problems.push(
      `table ${t.table} holds rows of organization ${map.orgId} (${t.found}) but is not in the platform model, so no backup holds them and a deletion would not remove them; declare it in PLATFORM_MODEL_FILE under postgres.sharedTables as {"schema": …, "table": …, "keyColumn": "${t.column}"} (parents before children)`,
    );
  }
  for (const c of await findLargeObjectColumns(db, schemas)) {
    problems.push(
      `column ${c.column} points at ${c.largeObjects} large object(s), which no backup of an organization holds (pg_dump of schemas leaves large objects out, and they belong to no schema); store the data in a bytea column`,
    );
  }
  const extensions = new Map<string, RequiredExtension>();
  for (const t of await findForeignTypes(db, schemas)) {
    if (t.extension) extensions.set(t.extension.name, t.extension);
    else
      problems.push(
        `type ${t.type}, used by ${t.usedBy}, lives outside the organization's schemas and in no extension, so no backup of the organization holds it; move it into the organization's schema ${map.postgres.mainSchema}`,
      );
  }
  if (purpose !== 'backup') {
    for (const d of await findOutsideDependents(db, schemas)) {
      problems.push(
        `${d.dependent} depends on ${d.on}: DROP SCHEMA … CASCADE of the organization would drop it too; drop it or make it independent of the organization first`,
      );
    }
  }
  if (problems.length > 0) {
    const doing = purpose === 'backup' ? 'backed up' : purpose === 'deletion' ? 'deleted' : 'replaced';
    throw permanentFailure(
      FailureType.InvalidInput,
      `organization ${map.orgId} cannot be ${doing} as the platform model describes it; nothing was changed: ${problems.join('; ')}`,
      { store: 'postgres', orgId: map.orgId, object: schemas.join(',') || map.postgres.mainSchema },
    );
  }
  return [...extensions.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * Refuses a `DROP SCHEMA … CASCADE` of `schemas` that would reach objects outside them; called in the
 * dropping transaction, so an object made since the deletion's preparation checked is not dropped.
 */
export async function assertNoOutsideDependents(
  db: Pool | PoolClient,
  map: OrganizationDataMap,
  schemas: readonly string[],
): Promise<void> {
  const dependents = await findOutsideDependents(db, schemas);
  if (dependents.length > 0) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `DROP SCHEMA … CASCADE of ${schemas.join(', ')} would also drop objects outside organization ${map.orgId}, so nothing was dropped: ${dependents
        .map((d) => `${d.dependent} depends on ${d.on}`)
        .join('; ')}; drop them or make them independent of the organization first`,
      { store: 'postgres', orgId: map.orgId, object: schemas.join(',') },
    );
  }
}
