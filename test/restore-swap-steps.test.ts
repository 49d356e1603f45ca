import { loadConfig } from '../src/config';
import { dropPostgresAside, putPostgresAsideBack, setPostgresAside } from '../src/activities/postgres/aside';
import { swapClickHouseTables, undoClickHouseSwap } from '../src/activities/clickhouse/swap';
import { dropClickHouseDatabase } from '../src/activities/clickhouse/restore';
import { organizationDataMap } from '../src/platform/data-map';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';
import { swapNames } from '../src/workflows/restore-organization';
import { uniqueOrgId } from './support/test-worker';

/**
 * The steps of a swapping `replace` keep their state in the stores, not in the worker: a worker that
 * dies after renaming the target aside (or halfway through a RENAME of many tables) leaves
 * everything a retry on another worker, or the compensation, needs to finish or undo the swap.
 */
describe('the steps of a swapping replace resume from what the stores hold', () => {
  let clients: StoreClients;
  const orgId = uniqueOrgId('rsst');
  const map = organizationDataMap(orgId);
  const names = swapNames(`run-${orgId}`);

  beforeAll(async () => {
    clients = createStoreClients(loadConfig());
    await seedOrganization(clients, orgId, { scale: 'small', seed: 'swap-steps' });
  });
  afterAll(async () => {
    await dropPostgresAside(clients.postgres, names.postgresAside).catch(() => undefined);
    await dropClickHouseDatabase(clients.clickhouse, names.clickhouseAside).catch(() => undefined);
    await dropClickHouseDatabase(clients.clickhouse, names.clickhouseStaging).catch(() => undefined);
    await dropSeededOrganization(clients, orgId).catch(() => undefined);
    await closeStoreClients(clients);
  });

  const schemaOids = async () =>
    (
      await clients.postgres.query<{ nspname: string; oid: string }>(
        `SELECT nspname, oid::text AS oid FROM pg_namespace WHERE nspname = ANY($1) OR left(nspname, length($2)) = $2 ORDER BY 1`,
        [map.postgres.schemas, names.postgresAside],
      )
    ).rows;
  const chTables = async (database: string) =>
    (
      (await (
        await clients.clickhouse.query({
          query: `SELECT name FROM system.tables WHERE database = '${database}' ORDER BY name`,
          format: 'JSONEachRow',
        })
      ).json()) as Array<{ name: string }>
    ).map((t) => t.name);

  it('schemas renamed aside by a worker that died are renamed back from the records alone, and setting aside again changes nothing', async () => {
    const before = await schemaOids();
    expect(before.map((s) => s.nspname)).toEqual([...map.postgres.schemas].sort());
    const asides = await setPostgresAside(clients.postgres, map, names.postgresAside);
    expect(asides.map((a) => a.original)).toEqual([...map.postgres.schemas].sort());
    const aside = await schemaOids();
    expect(aside.map((s) => s.nspname).every((n) => n.startsWith(`${names.postgresAside}_`))).toBe(true);
    // The retry of the renaming step (its answer lost with the worker) finds its records.
    expect(await setPostgresAside(clients.postgres, map, names.postgresAside)).toEqual(asides);
    expect(await schemaOids()).toEqual(aside);
    // A half-loaded new schema, as a load on the dead worker may have left it.
    await clients.postgres.query(`CREATE SCHEMA ${map.postgres.mainSchema}`);
    await clients.postgres.query(`CREATE TABLE ${map.postgres.mainSchema}.partial (id int)`);
    expect(await putPostgresAsideBack(clients.postgres, map, names.postgresAside)).toEqual(asides);
    expect(await schemaOids()).toEqual(before);
    expect(await putPostgresAsideBack(clients.postgres, map, names.postgresAside)).toEqual([]);
    expect(await schemaOids()).toEqual(before);
  });

  it('a ClickHouse swap stopped halfway is finished by a retry, or undone, from any point', async () => {
    const target = map.clickhouse.database;
    const originals = await chTables(target);
    expect(originals.length).toBeGreaterThan(2);
    // A staged copy: one table of the same name as an original, one new.
    await clients.clickhouse.command({ query: `CREATE DATABASE ${names.clickhouseStaging}` });
    const staged = [originals[0] ?? '', 'zz_new'];
    const moves = { staging: names.clickhouseStaging, aside: names.clickhouseAside, stagedTables: staged };
    for (const t of staged) {
      await clients.clickhouse.command({
        query: `CREATE TABLE ${names.clickhouseStaging}.\`${t}\` (staged UInt8) ENGINE = MergeTree ORDER BY staged`,
      });
    }
    // The worker died inside the first RENAME: one original moved aside, the rest still in place.
    await clients.clickhouse.command({ query: `CREATE DATABASE ${names.clickhouseAside}` });
    await clients.clickhouse.command({
      query: `RENAME TABLE ${target}.\`${originals[1]}\` TO ${names.clickhouseAside}.\`${originals[1]}\``,
    });
    const swapped = await swapClickHouseTables(clients.clickhouse, map, moves);
    expect(swapped.swappedIn).toEqual([...staged].sort());
    expect(swapped.setAside).toEqual(originals);
    // Undone after the swap finished, and again (idempotent): the originals are back, the staged copy in staging.
    expect(await undoClickHouseSwap(clients.clickhouse, map, moves)).toEqual(originals);
    expect(await undoClickHouseSwap(clients.clickhouse, map, moves)).toEqual([]);
    expect(await chTables(target)).toEqual(originals);
    expect(await chTables(names.clickhouseStaging)).toEqual([...staged].sort());
    // The worker died inside the second RENAME: every original aside, one staged table arrived.
    await clients.clickhouse.command({ query: `CREATE DATABASE ${names.clickhouseAside}` });
    await clients.clickhouse.command({
      query: `RENAME TABLE ${originals.map((t) => `${target}.\`${t}\` TO ${names.clickhouseAside}.\`${t}\``).join(', ')}`,
    });
    await clients.clickhouse.command({
      query: `RENAME TABLE ${names.clickhouseStaging}.zz_new TO ${target}.zz_new`,
    });
    expect(await undoClickHouseSwap(clients.clickhouse, map, moves)).toEqual(originals);
    expect(await chTables(target)).toEqual(originals);
  });
});
