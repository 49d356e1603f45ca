import { jetstream } from '@nats-io/jetstream';
import { loadConfig } from '../src/config';
import { DEFAULT_PLATFORM_MODEL, organizationDataMap } from '../src/platform/data-map';
import { describeOrganization, summarizeDescription } from '../src/platform/describe';
import {
  compareFingerprints,
  fingerprintOrganization,
  type OrganizationFingerprint,
} from '../src/platform/fingerprint';
import {
  ensurePlatformSchema,
  sharedTableDependencies,
  sharedTablesInForeignKeyOrder,
} from '../src/platform/platform-schema';
import { quoteClickHouseQualified, quotePgQualified } from '../src/platform/quoting';
import { dropSeededOrganization, SCALE_SIZES, seedOrganization } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';
import { uniqueOrgId } from './support/test-worker';

let clients: StoreClients;
const created: string[] = [];

/** Seeds a small org and remembers it for cleanup. */
async function seed(orgId: string, seedText: string, insertionOrder: 'forward' | 'reverse' | 'shuffled' = 'forward') {
  created.push(orgId);
  return seedOrganization(clients, orgId, { scale: 'small', seed: seedText, insertionOrder });
}

/** Names of the objects that differ between two fingerprints. */
function changed(a: OrganizationFingerprint, b: OrganizationFingerprint): string[] {
  return compareFingerprints(a, b)
    .differences.map((d) => d.object)
    .sort();
}

beforeAll(async () => {
  clients = createStoreClients(loadConfig());
  await ensurePlatformSchema(clients.postgres);
});

afterAll(async () => {
  await Promise.allSettled(created.map((id) => dropSeededOrganization(clients, id)));
  await closeStoreClients(clients);
});

describe('seeding', () => {
  it('seeding 3 organizations makes each appear in every store', async () => {
    const ids = [uniqueOrgId('s1'), uniqueOrgId('s2'), uniqueOrgId('s3')];
    for (const id of ids) await seed(id, id);
    const small = SCALE_SIZES.small;
    for (const id of ids) {
      const d = await describeOrganization(clients, id);
      expect(d.exists).toBe(true);
      expect(d.postgres.schemas.map((s) => s.schema)).toEqual([`org_${id}`, `org_${id}__agents`]);
      const main = d.postgres.schemas[0];
      expect(main?.tables.map((t) => [t.table, t.rows])).toEqual([
        ['agent_configurations', small.agentConfigurations],
        ['entity_definitions', small.entities],
        ['workflow_state', small.workflowStates],
      ]);
      expect(main?.tables.every((t) => t.bytes > 0)).toBe(true);
      expect(d.postgres.schemas[1]?.tables.map((t) => [t.table, t.rows])).toEqual([['agent_runs', small.agentRuns]]);
      expect(d.postgres.sharedRows.find((s) => s.table === 'public.organizations')?.rows).toBe(1);
      expect(d.postgres.sharedRows.find((s) => s.table === 'public.users')?.rows).toBe(small.users);
      expect(d.clickhouse.exists).toBe(true);
      expect(d.clickhouse.tables.map((t) => t.table)).toEqual([
        'analytics_events',
        'chat_archive',
        'chat_dead_letter',
        'kg_edges',
        'kg_nodes',
      ]);
      expect(d.clickhouse.tables.find((t) => t.table === 'kg_nodes')?.rows).toBe(small.kgNodes);
      expect(d.queue.streams.map((s) => [s.stream, s.messages])).toEqual([
        ['CHAT', small.chatMessages],
        ['AGENT_CONTEXT', small.contextMessages],
        ['STATS', small.statsMessages],
      ]);
      expect(
        d.queue.streams
          .flatMap((s) => s.subjects.map((x) => x.subject))
          .every((subject) => subject.split('.')[1] === id),
      ).toBe(true);
      expect(d.redis.patterns).toEqual([
        { pattern: `cache:${id}:*`, keys: small.cacheEntries },
        { pattern: `session:${id}:*`, keys: small.sessions },
        { pattern: `sessions:${id}`, keys: 1 },
      ]);
      const summary = summarizeDescription(d);
      expect(summary).toEqual(
        expect.arrayContaining([
          expect.stringMatching(new RegExp(`^postgres schema org_${id}: 3 tables, `)),
          `postgres public.organizations: 1 row of ${id}`,
          expect.stringMatching(new RegExp(`^clickhouse database org_${id}: 5 tables`)),
          `queue CHAT chat.${id}.>: ${small.chatMessages} messages in 8 subjects`,
          `redis cache:${id}:*: ${small.cacheEntries} keys`,
        ]),
      );
    }
  });

  it('an organization that was never seeded, or was dropped, does not exist anywhere', async () => {
    const id = uniqueOrgId('gone');
    const before = await describeOrganization(clients, id);
    expect(before.exists).toBe(false);
    expect(summarizeDescription(before)).toEqual([]);
    await seed(id, 'x');
    expect((await describeOrganization(clients, id)).exists).toBe(true);
    await dropSeededOrganization(clients, id);
    const after = await describeOrganization(clients, id);
    expect(after.exists).toBe(false);
    expect(summarizeDescription(after)).toEqual([]);
    // Dropping what is already gone succeeds.
    await dropSeededOrganization(clients, id);
  });
});

describe('fingerprints', () => {
  it('are stable across two runs, across a re-seed in another order, and equal for a clone under another id', async () => {
    const a = uniqueOrgId('fa');
    const b = uniqueOrgId('fb');
    await seed(a, 'same-seed');
    const first = await fingerprintOrganization(clients, a);
    const second = await fingerprintOrganization(clients, a);
    // 20 data objects, and the organization's privileges (owners, ACLs, policies) as one more.
    expect(first.objects.length).toBe(21);
    expect(first.objects.filter((o) => o.object.startsWith('privileges:'))).toHaveLength(1);
    expect(first.objects.every((o) => !o.object.includes(a))).toBe(true);
    expect(compareFingerprints(first, second)).toEqual({ equal: true, differences: [] });

    await seed(a, 'same-seed', 'shuffled');
    expect(compareFingerprints(first, await fingerprintOrganization(clients, a))).toEqual({
      equal: true,
      differences: [],
    });

    await seed(b, 'same-seed', 'reverse');
    expect(compareFingerprints(first, await fingerprintOrganization(clients, b))).toEqual({
      equal: true,
      differences: [],
    });

    // Another seed is other content in every object that holds data.
    await seed(b, 'other-seed');
    const other = await fingerprintOrganization(clients, b);
    expect(changed(first, other).length).toBeGreaterThanOrEqual(17);
  });

  it('change when one row, one message or one key changes, and only in that object', async () => {
    const id = uniqueOrgId('fc');
    await seed(id, 'change');
    const map = organizationDataMap(id);
    let before = await fingerprintOrganization(clients, id);
    const step = async (change: () => Promise<unknown>, expected: string[]) => {
      await change();
      const after = await fingerprintOrganization(clients, id);
      expect(changed(before, after)).toEqual(expected);
      before = after;
    };
    const entities = quotePgQualified(map.postgres.mainSchema, 'entity_definitions');
    await step(
      () =>
        clients.postgres.query(
          `UPDATE ${entities} SET name = name || '!' WHERE id = (SELECT id FROM ${entities} ORDER BY id LIMIT 1)`,
        ),
      [`schema:org_{org}.entity_definitions`],
    );
    await step(
      () => clients.postgres.query(`DELETE FROM public.user_roles WHERE org_id = $1 AND role = 'admin'`, [id]),
      ['shared:public.user_roles'],
    );
    // A duplicate of an existing row must add, not cancel out (as an XOR would).
    const nodes = quoteClickHouseQualified(map.clickhouse.database, 'kg_nodes');
    await step(
      () => clients.clickhouse.command({ query: `INSERT INTO ${nodes} SELECT * FROM ${nodes} WHERE id = 1` }),
      ['clickhouse:kg_nodes'],
    );
    await step(
      async () => jetstream(await clients.nats.connection()).publish(`chat.${id}.room_1`, '{"text":"one more"}'),
      ['queue:CHAT'],
    );
    await step(() => clients.redis.set(`cache:${id}:entity:0`, '{"changed":true}', 'KEEPTTL'), ['redis:cache:{org}:*']);
    await step(() => clients.redis.persist(`cache:${id}:entity:1`), ['redis:cache:{org}:*']);
    await step(() => clients.redis.sadd(`sessions:${id}`, 'revoked-later'), ['redis:sessions:{org}']);
  });

  it('a duplicated row changes the hash of a PostgreSQL table without a key', async () => {
    const id = uniqueOrgId('fd');
    await seed(id, 'dup');
    const map = organizationDataMap(id);
    const table = quotePgQualified(map.postgres.mainSchema, 'notes');
    await clients.postgres.query(`CREATE TABLE ${table} (body text)`);
    await clients.postgres.query(`INSERT INTO ${table} VALUES ('x'), ('y')`);
    const before = await fingerprintOrganization(clients, id, ['postgres']);
    await clients.postgres.query(`INSERT INTO ${table} VALUES ('x'), ('x')`);
    const after = await fingerprintOrganization(clients, id, ['postgres']);
    const object = `schema:org_{org}.notes`;
    expect(before.objects.find((o) => o.object === object)?.rows).toBe(2);
    expect(after.objects.find((o) => o.object === object)?.rows).toBe(4);
    expect(changed(before, after)).toEqual([object]);
  });

  it('hash rows by record hash, fall back to md5 of the text per table where a column type has no hash, and keep md5-text on request', async () => {
    const id = uniqueOrgId('fe');
    await seed(id, 'row-hash');
    const map = organizationDataMap(id);
    // json and point have no extended hash function: hash_record_extended refuses such rows.
    const odd = quotePgQualified(map.postgres.mainSchema, 'odd_types');
    await clients.postgres.query(`CREATE TABLE ${odd} (doc json, at point, n int)`);
    await clients.postgres.query(`INSERT INTO ${odd} VALUES ('{"b":1, "a":2}', '(1,2)', 1), (NULL, '(3,4)', 2)`);
    const byRecord = await fingerprintOrganization(clients, id, ['postgres']);
    const byText = await fingerprintOrganization(clients, id, ['postgres'], DEFAULT_PLATFORM_MODEL, {
      postgresRowHash: 'md5-text',
    });
    const oddObject = 'schema:org_{org}.odd_types';
    // The fallback table hashes like md5-text; every other table with rows hashes differently.
    expect(byRecord.objects.find((o) => o.object === oddObject)).toEqual(
      byText.objects.find((o) => o.object === oddObject),
    );
    expect(byRecord.objects.find((o) => o.object === oddObject)?.rows).toBe(2);
    const differ = changed(byRecord, byText);
    expect(differ).toContain('schema:org_{org}.entity_definitions');
    expect(differ).not.toContain(oddObject);
    expect(differ.every((o) => o.startsWith('schema:'))).toBe(true);
    // The fallback leaves the snapshot usable: a second run agrees, and changes still show.
    expect(compareFingerprints(byRecord, await fingerprintOrganization(clients, id, ['postgres']))).toEqual({
      equal: true,
      differences: [],
    });
    await clients.postgres.query(`UPDATE ${odd} SET at = '(5,6)' WHERE n = 2`);
    expect(changed(byRecord, await fingerprintOrganization(clients, id, ['postgres']))).toEqual([oddObject]);
  });

  it('hash ClickHouse rows column by column, NULLs included, falling back to the row text where cityHash64 refuses a column type', async () => {
    const id = uniqueOrgId('ff');
    await seed(id, 'ch-row-hash');
    const map = organizationDataMap(id);
    // Decimal and UUID are types ClickHouse 18's cityHash64 refuses.
    const ledger = quoteClickHouseQualified(map.clickhouse.database, 'ledger');
    await clients.clickhouse.command({
      query: `CREATE TABLE ${ledger} (id UInt64, amount Decimal(18, 2), ref UUID) ENGINE = MergeTree ORDER BY id`,
    });
    await clients.clickhouse.command({
      query: `INSERT INTO ${ledger} VALUES (1, 12.50, '00000000-0000-0000-0000-000000000001'), (2, 3.10, '00000000-0000-0000-0000-000000000002')`,
    });
    const byColumn = await fingerprintOrganization(clients, id, ['clickhouse']);
    const byText = await fingerprintOrganization(clients, id, ['clickhouse'], DEFAULT_PLATFORM_MODEL, {
      clickhouseRowHash: 'text-tuple',
    });
    const clickhouse18 = (
      await clients.clickhouse
        .query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })
        .then((r) => r.json<{ v: string }>())
    )[0]?.v.startsWith('18.');
    // On ClickHouse 18 the ledger falls back to the row text; newer servers hash Decimal and UUID directly.
    if (clickhouse18)
      expect(byColumn.objects.find((o) => o.object === 'clickhouse:ledger')).toEqual(
        byText.objects.find((o) => o.object === 'clickhouse:ledger'),
      );
    expect(byColumn.objects.find((o) => o.object === 'clickhouse:ledger')?.rows).toBe(2);
    expect(changed(byColumn, byText)).toContain('clickhouse:kg_nodes');
    // A row whose Nullable columns are NULL counts in the hash, not only in the row count.
    const events = quoteClickHouseQualified(map.clickhouse.database, 'analytics_events');
    await clients.clickhouse.command({
      query: `INSERT INTO ${events} VALUES (999999999, toDateTime(1704067200), NULL, 'null-user', [], NULL)`,
    });
    const after = await fingerprintOrganization(clients, id, ['clickhouse']);
    const before = byColumn.objects.find((o) => o.object === 'clickhouse:analytics_events');
    const now = after.objects.find((o) => o.object === 'clickhouse:analytics_events');
    expect(now?.rows).toBe((before?.rows ?? 0) + 1);
    expect(now?.hash).not.toBe(before?.hash);
    expect(changed(byColumn, after)).toEqual(['clickhouse:analytics_events']);
  });
});

describe('neighbouring ids', () => {
  it('<p>_ab, <p>_abc and <p>_ab_x never see each other in describe or fingerprint', async () => {
    const p = uniqueOrgId('nb');
    const ab = `${p}_ab`;
    const abc = `${p}_abc`;
    const abx = `${p}_ab_x`;
    await seed(ab, 'ab');
    const alone = await fingerprintOrganization(clients, ab);
    const aloneDescription = await describeOrganization(clients, ab);
    await seed(abc, 'abc');
    await seed(abx, 'abx');
    // Another id's extra objects would show up as added or changed objects of ab.
    expect(compareFingerprints(alone, await fingerprintOrganization(clients, ab))).toEqual({
      equal: true,
      differences: [],
    });
    const d = await describeOrganization(clients, ab);
    expect(d.postgres.schemas.map((s) => s.schema)).toEqual([`org_${ab}`, `org_${ab}__agents`]);
    expect(d.postgres.sharedRows).toEqual(aloneDescription.postgres.sharedRows);
    expect(d.queue.streams.map((s) => s.messages)).toEqual(aloneDescription.queue.streams.map((s) => s.messages));
    expect(
      d.queue.streams.flatMap((s) => s.subjects.map((x) => x.subject)).every((subject) => subject.split('.')[1] === ab),
    ).toBe(true);
    expect(d.redis.patterns).toEqual(aloneDescription.redis.patterns);

    // Dropping ab leaves its neighbours untouched, and they never had ab's objects.
    const abcBefore = await fingerprintOrganization(clients, abc);
    const abxBefore = await fingerprintOrganization(clients, abx);
    await dropSeededOrganization(clients, ab);
    expect((await describeOrganization(clients, ab)).exists).toBe(false);
    expect(compareFingerprints(abcBefore, await fingerprintOrganization(clients, abc)).equal).toBe(true);
    expect(compareFingerprints(abxBefore, await fingerprintOrganization(clients, abx)).equal).toBe(true);
    expect((await describeOrganization(clients, abx)).postgres.schemas.map((s) => s.schema)).toEqual([
      `org_${abx}`,
      `org_${abx}__agents`,
    ]);
  });
});

describe('shared tables', () => {
  it('are declared in an order that respects the foreign keys in pg_constraint', async () => {
    const declared = DEFAULT_PLATFORM_MODEL.postgres.sharedTables;
    const dependencies = await sharedTableDependencies(clients.postgres, declared);
    expect(dependencies).toEqual(
      expect.arrayContaining([
        { child: 'public.users', parent: 'public.organizations' },
        { child: 'public.user_roles', parent: 'public.users' },
        { child: 'public.api_keys', parent: 'public.users' },
        { child: 'public.api_keys', parent: 'public.organizations' },
      ]),
    );
    const position = (name: string) => declared.findIndex((t) => `${t.schema}.${t.table}` === name);
    for (const d of dependencies) expect(position(d.parent)).toBeLessThan(position(d.child));
    // A wrong declared order is put right from the catalog.
    const repaired = await sharedTablesInForeignKeyOrder(clients.postgres, [...declared].reverse());
    expect(repaired[0]?.table).toBe('organizations');
    expect([...repaired].sort((x, y) => x.table.localeCompare(y.table))).toEqual(
      [...declared].sort((x, y) => x.table.localeCompare(y.table)),
    );
    const repairedPosition = (name: string) => repaired.findIndex((t) => `${t.schema}.${t.table}` === name);
    for (const d of dependencies) expect(repairedPosition(d.parent)).toBeLessThan(repairedPosition(d.child));
    expect(await sharedTablesInForeignKeyOrder(clients.postgres, declared)).toEqual(declared);
  });
});
