/**
 * Platform benchmark (issue 17): `backupPlatform` over many small organizations.
 *
 *   npm run bench:platform -- [--orgs 1000] [--concurrency 4] [--raw-sample N] [--keep]
 *
 * 1. Removes every organization with this benchmark's id prefix (`pbench_`) left by an earlier run,
 *    in PostgreSQL (rows and schemas), ClickHouse, the queue and Redis; then seeds `--orgs` small
 *    organizations `pbench_00001`, … (4 at a time).
 * 2. Raw baseline: per organization, a bash script of `pg_dump -Fc -Z0 | zstd -1` of its schemas and
 *    each ClickHouse table's `Native` gzipped by the server (curl), run one organization after the
 *    other by one bash, as an operator's script would (see runRawDumps); their sum divided by
 *    the concurrency is what a perfect scheduler would take. `--raw-sample N` times N organizations
 *    spread over the range and scales the sum up (for 1,000 organizations on a busy machine).
 *    The same dumps are then timed at the run's concurrency: what the raw tools reach on this many
 *    cores, printed beside the sum / concurrency the issue's target is set against.
 * 3. `backupPlatform` {orgIds, concurrency} on a worker in this process, with a wrapper around every
 *    activity that records its run time, and the worker's RSS sampled every 100 ms: the peak is
 *    noted when the 10th, 100th and 1,000th organization's PostgreSQL backup finishes.
 *    CPU per process group (process-cpu.ts: worker, its tools, PostgreSQL, ClickHouse, Temporal) is
 *    read from /proc around the raw baseline and around the run, and printed per organization.
 * 4. From every history of the run (the platform runs and each organization's backup):
 *    orchestration overhead per activity = (completed − scheduled, by the server's event times) − the
 *    activity's own run time; median and p95. And the largest history, encoded, in bytes.
 * Cleans up at the end too (unless `--keep`): organizations and the temporary backup folder.
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { Context } from '@temporalio/activity';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { bundleWorkflowCode, NativeConnection, Runtime } from '@temporalio/worker';
import { z } from 'zod';
import { pgToolInvocation } from '../src/activities/postgres/tool-environment';
import { pgTool } from '../src/activities/postgres/tools';
import { loadConfig, type AppConfig } from '../src/config';
import { JsonLineLogger } from '../src/logger';
import { listClickHouseObjects } from '../src/platform/clickhouse-catalog';
import { loadPlatformModel, organizationDataMap, type PlatformModel } from '../src/platform/data-map';
import { listOrgSchemas } from '../src/platform/discovery';
import { quoteClickHouseQualified, quoteClickHouseString } from '../src/platform/quoting';
import { dropSeededOrganization, SCALE_SIZES, seedOrganization } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients, type StoreClients } from '../src/store-clients';
import { createWorker } from '../src/worker';
import type { backupPlatform } from '../src/workflows';
import { ERRORS_ONLY_BUNDLE_LOGGER } from '../test/support/bundle-logger';
import { cpuBetween, describeCpu, sampleCpu, type CpuSample } from './process-cpu';

const execFileAsync = promisify(execFile);

/** Every organization of this benchmark starts so: nothing else is ever seeded or dropped by it. */
const ORG_PREFIX = 'pbench_';
const SEED = 'platform-bench-1';
const RSS_SAMPLE_MS = 100;
/** Organization counts at which the worker's peak RSS so far is reported. */
const RSS_CHECKPOINTS = [10, 100, 1000];
/** Small organizations: a few hundred rows per store, so 1,000 of them seed in minutes. */
const SIZES = {
  ...SCALE_SIZES.small,
  entities: 40,
  workflowStates: 40,
  agentRuns: 30,
  kgNodes: 50,
  kgEdges: 80,
  analyticsEvents: 100,
  chatArchive: 20,
  chatMessages: 10,
  contextMessages: 5,
  statsMessages: 5,
  cacheEntries: 5,
};

interface Options {
  orgs: number;
  concurrency: number;
  rawSample: number | undefined;
  keep: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      orgs: { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '4' },
      'raw-sample': { type: 'string' },
      keep: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const whole = (value: string | undefined, name: string, max: number): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new Error(`${name}: expected a whole number 1-${max}; got ${JSON.stringify(value)}`);
    return n;
  };
  return {
    orgs: whole(values.orgs, '--orgs', 99_999),
    concurrency: whole(values.concurrency, '--concurrency', 64),
    rawSample: values['raw-sample'] === undefined ? undefined : whole(values['raw-sample'], '--raw-sample', 99_999),
    keep: values.keep === true,
  };
}

const seconds = (startedMs: number) => (performance.now() - startedMs) / 1000;
const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
const orgIdOf = (i: number) => `${ORG_PREFIX}${String(i + 1).padStart(5, '0')}`;

function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** Runs `work` over `items`, `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(
    Array.from({ length: Math.min(limit, queue.length) }, async () => {
      for (let item = queue.shift(); item !== undefined; item = queue.shift()) await work(item);
    }),
  );
}

/** `CPU per organization: worker 0.41 s, …`: where a small organization's work goes, by process group. */
function perOrganization(cpu: CpuSample, organizations: number): string {
  const n = Math.max(1, organizations);
  const each: CpuSample = {
    workerSeconds: cpu.workerSeconds / n,
    toolSeconds: cpu.toolSeconds / n,
    postgresSeconds: cpu.postgresSeconds / n,
    clickhouseSeconds: cpu.clickhouseSeconds / n,
    temporalSeconds: cpu.temporalSeconds / n,
  };
  return `${describeCpu(each, 2).replace('CPU:', 'CPU per organization:')} (${(cpu.workerSeconds + cpu.toolSeconds + cpu.postgresSeconds + cpu.clickhouseSeconds + cpu.temporalSeconds).toFixed(0)} s in all)`;
}

// ------------------------------------------------------------------ organizations

/** Every organization this benchmark may have left, in any store: rows, schemas, ClickHouse databases. */
async function leftoverOrganizations(clients: StoreClients, model: PlatformModel): Promise<string[]> {
  const found = new Set<string>();
  const like = `${ORG_PREFIX.replace(/_/g, '\\_')}%`;
  const rows = await clients.postgres
    .query<{ id: string }>('SELECT id FROM public.organizations WHERE id LIKE $1', [like])
    .catch(() => ({ rows: [] as Array<{ id: string }> }));
  for (const r of rows.rows) found.add(r.id);
  const schemaPrefix = `${model.postgres.schemaPrefix}${ORG_PREFIX}`;
  const schemas = await clients.postgres.query<{ nspname: string }>(
    'SELECT nspname FROM pg_namespace WHERE left(nspname, length($1)) = $1',
    [schemaPrefix],
  );
  for (const r of schemas.rows) found.add(r.nspname.slice(model.postgres.schemaPrefix.length).split('__')[0] ?? '');
  const databasePrefix = organizationDataMap(`${ORG_PREFIX}x`, model).clickhouse.database.slice(0, -1);
  const result = await clients.clickhouse.query({
    // ClickHouse 18.16 has no query parameters; the prefix is this file's constant, quoted.
    query: `SELECT name FROM system.databases WHERE startsWith(name, ${quoteClickHouseString(databasePrefix)})`,
    format: 'JSONEachRow',
  });
  for (const r of z.array(z.object({ name: z.string() })).parse(await result.json<unknown>()))
    found.add(r.name.slice(databasePrefix.length - ORG_PREFIX.length));
  return [...found].filter((id) => /^pbench_\d{5}$/.test(id)).sort();
}

async function dropOrganizations(clients: StoreClients, model: PlatformModel, orgIds: string[]): Promise<void> {
  await inParallel(orgIds, 4, (orgId) => dropSeededOrganization(clients, orgId, model));
}

// ------------------------------------------------------------------ raw baseline

/** `'…'` for bash: the argument exactly, whatever it holds. */
const shellQuoted = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;

/**
 * One organization's raw dump as a bash script in `dir`: its schemas with the workflow's codec
 * (`pg_dump -Fc -Z0 | zstd -1`), then each ClickHouse table's `Native` gzipped by the server.
 * `dbname` is the `--dbname=` argument without its password (in PGPASSWORD, see runRawDumps).
 */
async function writeRawDumpScript(
  config: AppConfig,
  clients: StoreClients,
  model: PlatformModel,
  orgId: string,
  dir: string,
  dbname: string,
  curlConfig: string,
): Promise<string> {
  const map = organizationDataMap(orgId, model);
  const schemas = await listOrgSchemas(clients.postgres, map);
  const tables = (await listClickHouseObjects(clients.clickhouse, map.clickhouse.database)).filter(
    (t) => t.engineClass === 'data',
  );
  const url = new URL(config.clickhouse.url);
  url.searchParams.set('enable_http_compression', '1');
  url.searchParams.set('http_zlib_compression_level', String(config.clickhouse.exportGzipLevel));
  const out = path.join(dir, `${orgId}.out`);
  const pgDump = [
    pgTool(config.postgres.binDir, 'pg_dump'),
    '--format=custom',
    '--compress=0',
    '--no-owner',
    '--no-privileges',
    dbname,
    ...schemas.map((s) => `--schema="${s}"`),
  ];
  const lines = ['set -euo pipefail', `${pgDump.map(shellQuoted).join(' ')} | zstd -1 -q -c > ${shellQuoted(out)}`];
  for (const table of tables) {
    const query = `SELECT * FROM ${quoteClickHouseQualified(map.clickhouse.database, table.name)} FORMAT Native`;
    const curl = ['curl', '-sS', '--fail', '-K', curlConfig, '-H', 'Accept-Encoding: gzip', '-o', out];
    lines.push(`${[...curl, '--data-binary', query, url.href].map(shellQuoted).join(' ')}`);
  }
  lines.push(`rm -f ${shellQuoted(out)}`);
  const script = path.join(dir, `${orgId}.sh`);
  await writeFile(script, `${lines.join('\n')}\n`, { mode: 0o700 });
  return script;
}

/**
 * Runs the raw dump scripts, `concurrency` at a time, from one bash (xargs -P) that times each and
 * the whole: the tools are forked by small shells, as an operator's script would run them, not by
 * this process, whose fork of ~800 MB of page tables cost 10-20 ms a tool (a CPU profile of an
 * earlier version that spawned them from here: 16 % of the raw time one at a time, 40 % four at once).
 * @returns the wall time of all, and the sum of each script's own time, in seconds.
 */
async function runRawDumps(
  scripts: string[],
  concurrency: number,
  env: NodeJS.ProcessEnv,
  dir: string,
): Promise<{ wallSeconds: number; sumSeconds: number }> {
  const list = path.join(dir, `scripts-${concurrency}.txt`);
  await writeFile(list, `${scripts.join('\n')}\n`);
  const driver = [
    'set -euo pipefail',
    'start=$(date +%s%N)',
    // Each line printed: one script's nanoseconds; a failing script fails xargs and so the driver.
    `xargs -P ${concurrency} -I{} bash -c 's=$(date +%s%N); bash "$1"; echo $(( $(date +%s%N) - s ))' _ {} < ${shellQuoted(list)}`,
    'echo "wall $(( $(date +%s%N) - start ))"',
  ].join('\n');
  const { stdout } = await execFileAsync('bash', ['-c', driver], { env, maxBuffer: 16 * 1024 * 1024 });
  let sumNs = 0;
  let wallNs = 0;
  for (const line of stdout.trim().split('\n')) {
    if (line.startsWith('wall ')) wallNs = Number(line.slice(5));
    else sumNs += Number(line);
  }
  if (!(wallNs > 0)) throw new Error(`raw dumps: no wall time in the driver's output: ${stdout.slice(0, 200)}`);
  return { wallSeconds: wallNs / 1e9, sumSeconds: sumNs / 1e9 };
}

// ------------------------------------------------------------------ histories

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

function eventMs(event: HistoryEvent): number {
  const time = event.eventTime;
  return time ? Number(time.seconds ?? 0) * 1000 + (time.nanos ?? 0) / 1e6 : 0;
}

/** Each completed activity of a history: its id, type and (completed − scheduled) by the server's clock. */
function activitySpans(history: History): Array<{ activityId: string; name: string; spanMs: number }> {
  const scheduled = new Map<string, { activityId: string; name: string; at: number }>();
  const spans: Array<{ activityId: string; name: string; spanMs: number }> = [];
  for (const event of history.events ?? []) {
    const s = event.activityTaskScheduledEventAttributes;
    if (s)
      scheduled.set(String(event.eventId), {
        activityId: s.activityId ?? '',
        name: s.activityType?.name ?? '?',
        at: eventMs(event),
      });
    const done = event.activityTaskCompletedEventAttributes;
    const from = done ? scheduled.get(String(done.scheduledEventId)) : undefined;
    if (from) spans.push({ activityId: from.activityId, name: from.name, spanMs: eventMs(event) - from.at });
  }
  return spans;
}

/** The run after this one when it continued as new. */
function nextRunId(history: History): string | undefined {
  const last = history.events?.[history.events.length - 1];
  return last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
}

const historyBytes = (history: History) => temporal.api.history.v1.History.encode(history).finish().length;

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  Runtime.install({ logger: new JsonLineLogger('WARN') });
  const baseConfig = loadConfig();
  const model = await loadPlatformModel(baseConfig.platformModelFile);
  const clients = createStoreClients(baseConfig);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-platform-bench-'));
  const config: AppConfig = {
    ...baseConfig,
    backup: { ...baseConfig.backup, store: 'filesystem', directory: path.join(workDir, 'backups') },
  };
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  const orgIds = Array.from({ length: options.orgs }, (_, i) => orgIdOf(i));
  const out = (line: string) => process.stdout.write(`${line}\n`);
  try {
    const leftovers = await leftoverOrganizations(clients, model);
    if (leftovers.length > 0) {
      out(`removing ${leftovers.length} organizations left by an earlier run…`);
      await dropOrganizations(clients, model, leftovers);
    }
    out(`seeding ${options.orgs} organizations ${orgIds[0] ?? ''} … ${orgIds[orgIds.length - 1] ?? ''}…`);
    const seedStarted = performance.now();
    let seeded = 0;
    await inParallel(orgIds, 4, async (orgId) => {
      await seedOrganization(clients, orgId, { scale: 'small', seed: SEED, model, sizes: SIZES });
      if (++seeded % 100 === 0) out(`  ${seeded} seeded (${seconds(seedStarted).toFixed(0)} s)`);
    });
    const seedSeconds = seconds(seedStarted);

    const rawDir = path.join(workDir, 'raw');
    await mkdir(rawDir, { recursive: true });
    const sample =
      options.rawSample && options.rawSample < orgIds.length
        ? Array.from(
            { length: options.rawSample },
            (_, i) => orgIds[Math.floor((i * orgIds.length) / (options.rawSample ?? 1))] ?? '',
          )
        : orgIds;
    // pg_dump reads the password from PGPASSWORD, never from an argument `ps` shows (tool-environment.ts).
    const invocation = pgToolInvocation([`--dbname=${config.postgres.url}`]);
    const curlConfig = path.join(rawDir, 'curl.conf');
    await writeFile(
      curlConfig,
      `user = "${`${config.clickhouse.username}:${config.clickhouse.password}`.replace(/["\\]/g, (c) => `\\${c}`)}"\n`,
      { mode: 0o600 },
    );
    const scripts: string[] = [];
    for (const orgId of sample)
      scripts.push(
        await writeRawDumpScript(config, clients, model, orgId, rawDir, invocation.args[0] ?? '', curlConfig),
      );
    out(`raw baseline: ${sample.length} organizations dumped one after the other…`);
    const rawCpuBefore = await sampleCpu();
    const oneAtATime = await runRawDumps(scripts, 1, invocation.env, rawDir);
    const rawCpu = cpuBetween(rawCpuBefore, await sampleCpu());
    const rawTotal = (oneAtATime.sumSeconds * orgIds.length) / sample.length;
    const rawPerfect = rawTotal / options.concurrency;
    // The same dumps at the run's concurrency, timed: on fewer cores than the concurrency the raw
    // tools cannot reach their sum / concurrency either, and this is the wall time they do reach.
    out(`raw baseline: the same ${sample.length} organizations, ${options.concurrency} at a time…`);
    const atConcurrency = await runRawDumps(scripts, options.concurrency, invocation.env, rawDir);
    const rawParallel = (atConcurrency.wallSeconds * orgIds.length) / sample.length;

    out('bundling workflows…');
    const bundlePath = path.join(workDir, 'workflow-bundle.js');
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.join(__dirname, '..', 'src', 'workflows', 'index.ts'),
      logger: ERRORS_ONLY_BUNDLE_LOGGER,
    });
    await writeFile(bundlePath, code);

    // Every activity's own run time, by workflow and activity id, and how many organizations are done.
    const runMs = new Map<string, number>();
    // And every activity's run time by its name: where a small organization's time goes.
    const runMsByName = new Map<string, number[]>();
    let orgsDone = 0;
    let peakRss = process.memoryUsage.rss();
    const rssAt = new Map<number, number>();
    const instrument = <A extends Record<string, (...args: never[]) => Promise<unknown>>>(activities: A): A => {
      const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
      for (const [name, fn] of Object.entries(activities)) {
        wrapped[name] = async (...args: never[]) => {
          const info = Context.current().info;
          const started = performance.now();
          try {
            return await fn(...args);
          } finally {
            const ranMs = performance.now() - started;
            runMs.set(`${info.workflowExecution?.workflowId ?? '?'}/${info.activityId}`, ranMs);
            runMsByName.set(name, [...(runMsByName.get(name) ?? []), ranMs]);
            if (name === 'backupPostgres') {
              orgsDone++;
              if (RSS_CHECKPOINTS.includes(orgsDone)) rssAt.set(orgsDone, Math.max(peakRss, process.memoryUsage.rss()));
            }
          }
        };
      }
      return wrapped as A;
    };
    const taskQueue = `bench-platform-${randomUUID().slice(0, 8)}`;
    const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), RSS_SAMPLE_MS);
    const workflowId = `backup-platform-bench-${Date.now()}`;
    let wallSeconds = 0;
    let runCpu: CpuSample | undefined;
    let result: Awaited<ReturnType<typeof backupPlatform>>;
    try {
      const worker = await createWorker({
        config,
        clients,
        connection: nativeConnection,
        workflowBundlePath: bundlePath,
        taskQueue,
        model,
        temporal: client,
        instrument,
      });
      out(`backupPlatform of ${orgIds.length} organizations at concurrency ${options.concurrency}…`);
      result = await worker.runUntil(async () => {
        const cpuBefore = await sampleCpu();
        const started = performance.now();
        const value = await client.workflow.execute<typeof backupPlatform>('backupPlatform', {
          taskQueue,
          workflowId,
          args: [{ orgIds, concurrency: options.concurrency, reason: 'platform benchmark', verify: false }],
        });
        wallSeconds = seconds(started);
        runCpu = cpuBetween(cpuBefore, await sampleCpu());
        return value;
      });
    } finally {
      clearInterval(sampler);
      await nativeConnection.close();
    }

    out('reading histories…');
    const overheads: number[] = [];
    let largest = { bytes: 0, workflow: '' };
    let histories = 0;
    const account = (id: string, history: History) => {
      histories++;
      const bytes = historyBytes(history);
      if (bytes > largest.bytes) largest = { bytes, workflow: id };
      for (const span of activitySpans(history)) {
        const ran = runMs.get(`${id}/${span.activityId}`);
        if (ran !== undefined) overheads.push(span.spanMs - ran);
      }
    };
    for (let runId: string | undefined = undefined, first = true; first || runId; first = false) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      account(workflowId, history);
      runId = nextRunId(history);
    }
    for (const orgId of orgIds) {
      const backupId = `backup-${orgId}-${result.platformBackupId}`;
      account(backupId, await client.workflow.getHandle(backupId).fetchHistory());
    }

    const lines = [
      '',
      `platform benchmark: ${orgIds.length} organizations, concurrency ${options.concurrency}; ${os.cpus().length} CPUs, load ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
      `seeding                                   ${seedSeconds.toFixed(1)} s`,
      `raw dumps, sum over organizations          ${rawTotal.toFixed(1)} s${sample.length < orgIds.length ? ` (scaled from ${sample.length} timed)` : ''}; / ${options.concurrency} = ${rawPerfect.toFixed(1)} s`,
      `backupPlatform wall time                  ${wallSeconds.toFixed(1)} s: ${(wallSeconds / rawPerfect).toFixed(2)}× (sum of raw dumps) / concurrency (target ≤ 1.10); ${result.succeeded} succeeded, ${result.failed.length} failed`,
      `raw dumps, ${options.concurrency} at a time, measured  ${rawParallel.toFixed(1)} s${sample.length < orgIds.length ? ' (scaled)' : ''} (${(rawParallel / rawPerfect).toFixed(2)}× their sum / ${options.concurrency}); backupPlatform ${(wallSeconds / rawParallel).toFixed(2)}× this`,
      `raw dumps, ${perOrganization(rawCpu, sample.length)}`,
      ...(runCpu ? [`backupPlatform, ${perOrganization(runCpu, orgIds.length)}`] : []),
      `orchestration per activity (${overheads.length} activities): median ${percentile(overheads, 50).toFixed(0)} ms, p95 ${percentile(overheads, 95).toFixed(0)} ms (target median < 50 ms)`,
      `worker peak RSS: ${RSS_CHECKPOINTS.filter((n) => rssAt.has(n))
        .map((n) => `${n} orgs ${mb(rssAt.get(n) ?? 0)} MB`)
        .join(', ')}; at the end ${mb(peakRss)} MB`,
      `largest history: ${largest.bytes} bytes (${largest.workflow}) of ${histories} read`,
    ];
    lines.push(
      'activity run time by name, per organization (sum over the run / organizations; median, p95 of one call):',
    );
    const byName = [...runMsByName].map(([name, ms]) => ({ name, ms, total: ms.reduce((a, b) => a + b, 0) }));
    for (const { name, ms, total } of byName.sort((a, b) => b.total - a.total)) {
      lines.push(
        `  ${name.padEnd(34)} ${(total / orgIds.length).toFixed(0).padStart(6)} ms/org  ${ms.length} calls, median ${percentile(ms, 50).toFixed(0)} ms, p95 ${percentile(ms, 95).toFixed(0)} ms`,
      );
    }
    for (const failure of result.failed.slice(0, 5)) lines.push(`  failed ${failure.orgId}: ${failure.error}`);
    out(lines.join('\n'));
  } finally {
    await rm(workDir, { recursive: true, force: true });
    if (!options.keep) {
      const left = await leftoverOrganizations(clients, model).catch(() => orgIds);
      out(`dropping ${left.length} benchmark organizations…`);
      await dropOrganizations(clients, model, left).catch((err: unknown) =>
        process.stderr.write(`could not drop every benchmark organization: ${String(err)}\n`),
      );
    }
    await connection.close();
    await closeStoreClients(clients);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
