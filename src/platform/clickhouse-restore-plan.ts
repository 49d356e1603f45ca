import { classifyClickHouseEngine } from './clickhouse-catalog';
import { ClickHouseDdlRefused, describeClickHouseStatement, type ClickHouseStatement } from './clickhouse-ddl';

/** One step of a ClickHouse restore, in the order they must run. */
export type ClickHouseRestoreStep =
  | { kind: 'create'; object: string; statement: string; described: ClickHouseStatement }
  /** Load the backed-up rows of `object` into the table of that name, or into the inner table of the view of that name. */
  | { kind: 'load'; object: string; into: 'table' | 'inner-table-of-view' }
  /** Rows an older backup exported from an engine that owns none (a Buffer's are its destination's): never written. */
  | { kind: 'skip'; object: string; reason: string };

/**
 * Orders a restore so every object exists before what reads it and no row arrives twice:
 * 1. tables whose engine owns data, 2. their rows, 3. tables of other engines (Buffer, Distributed,
 * Merge, …) and dictionaries, as DDL only, 4. views and materialized views in dependency order, each
 * MV's inner-table rows loaded right after the view is created (before any view reading it exists).
 * A materialized view is created after the tables it reads and its `TO` table hold their rows, and
 * without POPULATE, so it never copies them again. Ties go by name, so a plan is deterministic.
 * @param ddl each object's name and CREATE statement, as backed up.
 * @param data the names of the objects whose rows the backup holds.
 * @param sourceDatabase the database the statements were taken from.
 * @throws ClickHouseDdlRefused for a statement that does not create the object it is filed under,
 *   or rows that no restored object can hold.
 */
export function planClickHouseRestore(
  ddl: ReadonlyArray<{ object: string; statement: string }>,
  data: readonly string[],
  sourceDatabase: string,
): ClickHouseRestoreStep[] {
  const byName = (a: { object: string }, b: { object: string }) =>
    a.object < b.object ? -1 : a.object > b.object ? 1 : 0;
  const creates = ddl
    .map(({ object, statement }) => {
      const described = describeClickHouseStatement(statement);
      if (described.name !== object)
        throw new ClickHouseDdlRefused(`the CREATE statement filed under ${object} creates ${described.name}`);
      return { kind: 'create' as const, object, statement, described };
    })
    .sort(byName);
  const isView = (s: (typeof creates)[number]) =>
    s.described.kind === 'view' || s.described.kind === 'materialized-view';
  const ownsData = (s: (typeof creates)[number]) =>
    s.described.kind === 'table' && classifyClickHouseEngine(s.described.engine ?? '') === 'data';
  const dataTables = creates.filter(ownsData);
  const others = creates.filter((s) => !ownsData(s) && !isView(s));
  const views = orderViews(creates.filter(isView), sourceDatabase);
  const rows = new Set(data);
  const steps: ClickHouseRestoreStep[] = [...dataTables];
  for (const table of dataTables)
    if (rows.delete(table.object)) steps.push({ kind: 'load', object: table.object, into: 'table' });
  steps.push(...others);
  for (const other of others)
    if (rows.delete(other.object))
      steps.push({
        kind: 'skip',
        object: other.object,
        reason: `a ${other.described.engine ?? other.described.kind} owns no rows`,
      });
  for (const view of views) {
    steps.push(view);
    const inner = view.described.kind === 'materialized-view' && view.described.to === undefined;
    if (inner && rows.delete(view.object))
      steps.push({ kind: 'load', object: view.object, into: 'inner-table-of-view' });
  }
  if (rows.size > 0)
    throw new ClickHouseDdlRefused(
      `the backup holds rows of ${[...rows].sort().join(', ')} but no statement that creates a table for them`,
    );
  return steps;
}

/** Views in an order where each comes after the views of the same database it reads; a cycle (impossible on a server) falls back to name order. */
function orderViews<T extends { object: string; described: ClickHouseStatement }>(
  views: readonly T[],
  database: string,
): T[] {
  const names = new Set(views.map((v) => v.object));
  const pending = new Map(
    views.map((v) => [
      v.object,
      new Set(
        v.described.references
          .filter((r) => r.database === database && names.has(r.name) && r.name !== v.object)
          .map((r) => r.name),
      ),
    ]),
  );
  const ordered: T[] = [];
  while (ordered.length < views.length) {
    const ready = views.find((v) => pending.get(v.object)?.size === 0) ?? views.find((v) => pending.has(v.object));
    if (!ready) break;
    ordered.push(ready);
    pending.delete(ready.object);
    for (const deps of pending.values()) deps.delete(ready.object);
  }
  return ordered;
}
