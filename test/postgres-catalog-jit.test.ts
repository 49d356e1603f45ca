import type { PoolClient } from 'pg';
import { loadConfig } from '../src/config';
import { findForeignTypes, FOREIGN_TYPES_SQL } from '../src/platform/discovery';
import { queryWithoutJit } from '../src/platform/pg-transaction';
import { PRIVILEGE_OBJECTS_SQL, readPostgresPrivileges } from '../src/platform/postgres-privileges';
import { quotePgIdent } from '../src/platform/quoting';
import { dropSeededOrganization } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients } from '../src/store-clients';
import { createBareOrganization } from './support/bare-organization';
import { uniqueOrgId } from './support/test-worker';

/** What `EXPLAIN (FORMAT JSON)` prints: one entry, with a `JIT` section when the query was compiled. */
interface ExplainedPlan {
  Plan: { 'Total Cost': number };
  JIT?: { Functions: number };
}

/**
 * The walk of an organization's types is planned at millions of rows for the few dozen it finds, far
 * above `jit_above_cost`, so PostgreSQL compiled it with LLVM on every call: 0.7–3 s of a small
 * organization's backup (bench:platform measured 2.9 s of its 3.4 s boundary check), where the
 * query itself runs in 5 ms. Catalog walks run with JIT off; the session's setting is left as it was.
 */
describe('catalog walks run without JIT compilation', () => {
  const clients = createStoreClients(loadConfig());
  const orgId = uniqueOrgId('jit');
  let schema = '';

  beforeAll(async () => {
    schema = await createBareOrganization(clients, orgId);
    const s = quotePgIdent(schema);
    await clients.postgres.query(`CREATE TYPE ${s}.mood AS ENUM ('calm', 'busy');
      CREATE DOMAIN ${s}.positive AS integer CHECK (VALUE > 0);
      CREATE TABLE ${s}.moods (id ${s}.positive PRIMARY KEY, mood ${s}.mood, history ${s}.mood[], at timestamptz[])`);
  });
  afterAll(async () => {
    await dropSeededOrganization(clients, orgId).catch(() => undefined);
    await closeStoreClients(clients);
  });

  it('the foreign-types walk is planned above jit_above_cost, runs uncompiled, and the setting is kept', async () => {
    const schemas = [schema];
    const client = await clients.postgres.connect();
    try {
      const setting = (
        await client.query<{ jit: string; above: number; available: boolean }>(
          `SELECT current_setting('jit') AS jit, current_setting('jit_above_cost')::float8 AS above,
                  pg_jit_available() AS available`,
        )
      ).rows[0];
      if (!setting) throw new Error('no settings read');
      const explained = async (analyze: boolean, withoutJit: boolean): Promise<ExplainedPlan> => {
        const sql = `EXPLAIN (${analyze ? 'ANALYZE, ' : ''}FORMAT JSON) ${FOREIGN_TYPES_SQL}`;
        const result = withoutJit
          ? await queryWithoutJit<{ 'QUERY PLAN': ExplainedPlan[] }>(client, sql, [schemas])
          : await client.query<{ 'QUERY PLAN': ExplainedPlan[] }>(sql, [schemas]);
        const plan = result.rows[0]?.['QUERY PLAN'][0];
        if (!plan) throw new Error('EXPLAIN printed no plan');
        return plan;
      };

      // The finding: the estimate is what makes the server compile the walk.
      expect((await explained(false, false)).Plan['Total Cost']).toBeGreaterThan(setting.above);
      if (setting.available && setting.jit === 'on') expect((await explained(true, false)).JIT).toBeDefined();

      expect((await explained(true, true)).JIT).toBeUndefined();
      const after = await client.query<{ jit: string }>(`SELECT current_setting('jit') AS jit`);
      expect(after.rows[0]?.jit).toBe(setting.jit);

      // A failed query inside a transaction: the rollback puts the setting back.
      await client.query('BEGIN');
      await expect(queryWithoutJit(client, 'SELECT 1 / 0', [])).rejects.toThrow(/division by zero/);
      await client.query('ROLLBACK');
      const rolledBack = await client.query<{ jit: string }>(`SELECT current_setting('jit') AS jit`);
      expect(rolledBack.rows[0]?.jit).toBe(setting.jit);
    } finally {
      client.release();
    }

    // Through the pool: the organization's own enum, domain and arrays are no foreign types; a
    // timestamptz array is pg_catalog's.
    expect(await findForeignTypes(clients.postgres, schemas)).toEqual([]);
  });

  /** The setting of `jit` on `client` now. */
  const jitOf = async (client: PoolClient) =>
    (await client.query<{ jit: string }>(`SELECT current_setting('jit') AS jit`)).rows[0]?.jit;

  /** The connection as the code under test sees it, noting the `jit` in force each time `sql` is sent. */
  function observing(client: PoolClient, sql: string): { observed: PoolClient; seen: Array<string | undefined> } {
    const seen: Array<string | undefined> = [];
    const observed = {
      release: () => undefined,
      query: async (text: string, params?: unknown[]) => {
        if (text === sql) seen.push(await jitOf(client));
        return client.query(text, params);
      },
    } as unknown as PoolClient;
    return { observed, seen };
  }

  it('findForeignTypes runs its walk with jit off, on the connection it was given, and leaves it as it was', async () => {
    const client = await clients.postgres.connect();
    try {
      const before = await jitOf(client);
      const { observed, seen } = observing(client, FOREIGN_TYPES_SQL);
      await findForeignTypes(observed, [schema]);
      expect(seen).toEqual(['off']);
      expect(await jitOf(client)).toBe(before);
    } finally {
      client.release();
    }
  });

  it('the privileges read sends its objects query with jit off, even where every query would be compiled', async () => {
    const client = await clients.postgres.connect();
    try {
      // A catalog of 1,000 organizations plans the objects query above jit_above_cost; here every
      // query is, so the setting in force when it is sent is what decides.
      await client.query('SET jit_above_cost = 0');
      const before = await jitOf(client);
      const { observed, seen } = observing(client, PRIVILEGE_OBJECTS_SQL);
      await client.query('BEGIN READ ONLY');
      const privileges = await readPostgresPrivileges(observed, [schema]);
      await client.query('COMMIT');
      expect(seen).toEqual(['off']);
      expect(await jitOf(client)).toBe(before);
      expect(privileges.objects.map((o) => o.identity)).toEqual(expect.arrayContaining([`${schema}.moods`]));
    } finally {
      await client.query('RESET jit_above_cost').catch(() => undefined);
      client.release();
    }
  });
});
