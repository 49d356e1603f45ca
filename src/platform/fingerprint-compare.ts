// Pure comparison of fingerprints: no store clients, so workflows may import it.
import type { ObjectComparison } from '../contracts/verification';
import type { ObjectFingerprint } from './fingerprint';

/**
 * Compares two lists of object fingerprints by store and object name (ids are mapped out of both),
 * one entry per object in either list, sorted by store then object.
 */
export function compareObjectFingerprints(
  expected: readonly ObjectFingerprint[],
  actual: readonly ObjectFingerprint[],
): ObjectComparison[] {
  const key = (o: ObjectFingerprint) => `${o.store}\u0000${o.object}`;
  const byKey = new Map<
    string,
    { store: string; object: string; expected?: ObjectFingerprint; actual?: ObjectFingerprint }
  >();
  for (const e of expected) byKey.set(key(e), { store: e.store, object: e.object, expected: e });
  for (const a of actual)
    byKey.set(key(a), { ...(byKey.get(key(a)) ?? { store: a.store, object: a.object }), actual: a });
  return [...byKey.values()]
    .sort((x, y) =>
      x.store < y.store ? -1 : x.store > y.store ? 1 : x.object < y.object ? -1 : x.object > y.object ? 1 : 0,
    )
    .map(({ store, object, expected: e, actual: a }) => ({
      store,
      object,
      ...(e ? { expected: { rows: e.rows, hash: e.hash } } : {}),
      ...(a ? { actual: { rows: a.rows, hash: a.hash } } : {}),
      equal: e !== undefined && a !== undefined && e.rows === a.rows && e.hash === a.hash,
    }));
}

/** One line per differing object, for failure messages. */
export function describeDifferences(comparisons: readonly ObjectComparison[]): string[] {
  return comparisons
    .filter((c) => !c.equal)
    .map((c) =>
      !c.actual
        ? `${c.object}: missing after restore (expected ${c.expected?.rows} rows)`
        : !c.expected
          ? `${c.object}: not in the backup (found ${c.actual.rows} rows)`
          : `${c.object}: expected ${c.expected.rows} rows / ${c.expected.hash}, found ${c.actual.rows} rows / ${c.actual.hash}`,
    );
}
