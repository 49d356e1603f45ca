import { execFile } from 'node:child_process';
import { loadConfig } from '../src/config';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { startOrganizationDeletion } from '../src/client/deletion';
import { organizationDataMap } from '../src/platform/data-map';
import { seedOrganization } from '../src/platform/seed-organization';
import { backupOrganization, restoreOrganization } from '../src/workflows';
import { createClickHouseZoo, zooIdent, type ClickHouseZoo } from './fixtures/clickhouse-zoo';
import { removeDeletionArtifacts, terminateIfRunning } from './support/deletion';
import { dropTestOrganizations } from './support/organizations';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

const run = promisify(execFile);

/** One object as plain `clickhouse-client` sees it: `count()` and its rows as TSV, sorted, hashed; for a merging table also its rows `FINAL`. */
interface PlainView {
  count: string;
  lines: number;
  sha256: string;
  final?: string;
}

/**
 * The ClickHouse server the worker talks to, for `clickhouse-client` (native protocol): its host from
 * CLICKHOUSE_URL and CLICKHOUSE_TCP_PORT, as scripts/stack.sh starts it, so a second stack on other
 * ports (scripts/fresh-machine-check.sh) is read, not the usual one.
 */
const CLICKHOUSE_CLIENT_ARGS = [
  '--host',
  new URL(loadConfig().clickhouse.url).hostname,
  '--port',
  process.env.CLICKHOUSE_TCP_PORT || '9000',
];

/**
 * Reads every object of the zoo with plain `clickhouse-client` queries, none of the project's code:
 * the comparison must not share a mistake with the fingerprint it checks.
 */
async function readPlainly(database: string, zoo: ClickHouseZoo): Promise<Record<string, PlainView>> {
  const client = async (query: string) =>
    (await run('clickhouse-client', [...CLICKHOUSE_CLIENT_ARGS, '--query', query], { maxBuffer: 256 * 1024 * 1024 }))
      .stdout;
  const views: Record<string, PlainView> = {};
  for (const object of zoo.objects) {
    const table = `${zooIdent(database)}.${zooIdent(object)}`;
    const count = (await client(`SELECT count() FROM ${table}`)).trim();
    const sortedTsv = async (query: string) => {
      const lines = (await client(`${query} FORMAT TSV`)).split('\n').filter((l) => l !== '');
      lines.sort();
      return { lines: lines.length, sha256: createHash('sha256').update(lines.join('\n')).digest('hex') };
    };
    const columns = zoo.columns[object] ?? '*';
    const rows = await sortedTsv(`SELECT ${columns} FROM ${table}`);
    // What merges will make of the rows: the order of rows within a key decides which row wins.
    const final = zoo.merging.includes(object)
      ? (await sortedTsv(`SELECT ${columns} FROM ${table} FINAL`)).sha256
      : undefined;
    views[object] = { count, ...rows, ...(final !== undefined ? { final } : {}) };
  }
  return views;
}

/**
 * The zoo round trip: a database with every engine, type and object kind ClickHouse 18.16 allows,
 * unmerged duplicates included, is backed up (with verification), cloned, deleted and restored from
 * the pre-deletion backup, and read by plain queries each time.
 */
describe('the ClickHouse zoo', () => {
  let env: TestWorker;
  const created: string[] = [];
  const workflows: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('chzoo');
  });
  afterAll(async () => {
    if (!env) return;
    for (const id of workflows) await terminateIfRunning(env.client, id);
    await dropTestOrganizations(env, created);
    for (const orgId of created) await removeDeletionArtifacts(env.clients, env.config.backup.directory, orgId);
    await env.shutdown();
  });

  const dbOf = (orgId: string) => organizationDataMap(orgId).clickhouse.database;

  it('backs up, verifies, clones, deletes and restores every engine, type and name with the same rows, unmerged duplicates included', async () => {
    const orgId = uniqueOrgId('chzoo');
    created.push(orgId);
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'zoo' });
    const db = dbOf(orgId);
    const zoo: ClickHouseZoo = await createClickHouseZoo(env.clients.clickhouse, db);
    process.stdout.write(`zoo: ${zoo.objects.length} objects; not on this server: ${zoo.missing.join('; ')}\n`);
    const source = await readPlainly(db, zoo);
    // The duplicates are there to be kept: 6 rows, 3 keys.
    expect(source['replacing']?.count).toBe('6');

    const backup = await env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'clickhouse zoo', verify: true }],
    });
    expect(backup.verification).toMatchObject({ passed: true });
    // Backup and verification read the source only: nothing flushed, merged or consumed.
    expect(await readPlainly(db, zoo)).toEqual(source);

    const cloneId = uniqueOrgId('chzooc');
    created.push(cloneId);
    await env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${cloneId}-${Date.now()}`,
      args: [{ backupId: backup.backupId, orgId, targetOrgId: cloneId }],
    });
    expect(await readPlainly(dbOf(cloneId), zoo)).toEqual(source);
    expect(await readPlainly(db, zoo)).toEqual(source);

    const deletion = await startOrganizationDeletion(
      env.client,
      {
        orgId,
        confirmOrgId: orgId,
        requestedBy: 'jest',
        reason: 'clickhouse zoo',
        gracePeriod: '0s',
        backupRetention: '1h',
        storeDownAfter: '30s',
      },
      { taskQueue: env.taskQueue },
    );
    workflows.push(deletion.workflowId);
    const deleted = await deletion.result();
    if (deleted.outcome !== 'deleted' || deleted.certificate.backup.skipped)
      throw new Error(`expected a deletion with a backup, got ${JSON.stringify(deleted)}`);
    workflows.push(deleted.certificate.retention.shredWorkflowId);
    const gone = await run('clickhouse-client', [
      ...CLICKHOUSE_CLIENT_ARGS,
      '--query',
      `SELECT count() FROM system.databases WHERE name = '${db}'`,
    ]);
    expect(gone.stdout.trim()).toBe('0');

    await env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${orgId}-${Date.now()}`,
      args: [
        {
          backupId: deleted.certificate.backup.backupId,
          orgId,
          mode: 'into-empty',
          override: { reason: 'clickhouse zoo round trip' },
        },
      ],
    });
    expect(await readPlainly(db, zoo)).toEqual(source);
  }, 600_000);
});
