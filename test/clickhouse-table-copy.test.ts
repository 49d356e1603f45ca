import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { copyTableForBackup, dropTableCopy } from '../src/activities/clickhouse/table-copy';
import { loadConfig } from '../src/config';
import { listClickHouseObjects } from '../src/platform/clickhouse-catalog';
import { readClickHouseRestoreSettings } from '../src/platform/clickhouse-settings';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';

/** The private copy a backup reads a table from (table-copy.ts), on the real server. */
describe('ClickHouse table copy for a backup', () => {
  let clients: StoreClients;
  const suffix = randomUUID().replace(/-/g, '').slice(0, 10);
  const source = `org_tcopy_${suffix}`;
  const staging = `eloquent_scratch_backup_tcopy${suffix}_1`;
  const command = (query: string) => clients.clickhouse.command({ query });
  const idsOf = async (table: string): Promise<number[]> =>
    z
      .array(z.object({ id: z.union([z.string(), z.number()]) }))
      .parse(
        await (
          await clients.clickhouse.query({ query: `SELECT id FROM ${table} ORDER BY id`, format: 'JSONEachRow' })
        ).json(),
      )
      .map((row) => Number(row.id));

  beforeAll(async () => {
    clients = createStoreClients(loadConfig());
    await command(`CREATE DATABASE ${source}`);
    await command(`CREATE DATABASE ${staging}`);
  });
  afterAll(async () => {
    await command(`DROP DATABASE IF EXISTS ${source}`);
    await command(`DROP DATABASE IF EXISTS ${staging}`);
    await closeStoreClients(clients);
  });

  it.each([
    ['MergeTree', 'MergeTree ORDER BY id'],
    ['Log', 'Log'],
  ])(
    'a %s table is copied with its own rows, and a copy already in the staging database (a crashed attempt) is replaced, not added to',
    async (_kind, engine) => {
      const table = `t_${engine.split(' ')[0]?.toLowerCase() ?? 'x'}`;
      await command(`CREATE TABLE ${source}.${table} (id UInt64) ENGINE = ${engine}`);
      await command(`INSERT INTO ${source}.${table} SELECT number FROM system.numbers LIMIT 5`);
      const object = (await listClickHouseObjects(clients.clickhouse, source)).find((o) => o.name === table);
      if (!object) throw new Error(`${source}.${table} not listed`);
      const settings = await readClickHouseRestoreSettings(clients.clickhouse);

      const fresh = await copyTableForBackup(clients.clickhouse, settings, source, staging, object);
      expect(await idsOf(`${staging}.${table}`)).toEqual([0, 1, 2, 3, 4]);
      // What a crashed attempt leaves: the copy, with rows of another moment in it.
      await command(`INSERT INTO ${staging}.${table} VALUES (100)`);
      const again = await copyTableForBackup(clients.clickhouse, settings, source, staging, object);
      expect(await idsOf(`${staging}.${table}`)).toEqual([0, 1, 2, 3, 4]);
      expect(again.how).toBe(fresh.how);
      await dropTableCopy(clients.clickhouse, again);
    },
  );
});
