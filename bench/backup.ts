/**
 * Backup benchmark (issues 4, 5 and 17): the `backupOrganization` workflow against the raw tools, in one run.
 *
 *   npx tsx bench/backup.ts [--scale large|medium|small] [--jobs N] [--keep] [--encrypted] [--skip-verify]
 *                           [--skip-old-baseline] [--seed-only]
 *
 * `--seed-only` seeds (or checks) the organization and stops, keeping it: seeding a quiet machine ahead of a run.
 *
 * 1. Seeds `bench_<scale>` (about 2.5 min for `large`), or reuses it when a marker on its main schema
 *    says it was seeded with this scale and seed and ClickHouse still holds the expected rows.
 * 2. The honest baseline (issue 17): the raw tools in their fastest form at the compression the
 *    workflow uses, both stores in parallel: `pg_dump -Fd -j N -Z1` ‖ every ClickHouse table's
 *    `Native` gzipped by the server at CLICKHOUSE_EXPORT_GZIP_LEVEL; then, alone, for reference,
 *    `pg_dump -Fd -j N -Z0` (the floor: the server's COPY output) and `pg_dump -Fc -Z0 | zstd -1`
 *    (the workflow's own codec, raw), and that zstd archive restored raw (`zstd -d`, then
 *    `pg_restore -j N` into an empty database): the floor of the verification's PostgreSQL half.
 *    CPU per process group is read from /proc (process-cpu.ts).
 * 3. The old comparison (unless `--skip-old-baseline`): `pg_dump -Fc` at default gzip and plain
 *    `Native`, sequential then parallel; printed as a labelled second line.
 * 4. `backupOrganization` (verify: false) on a worker in this process, with peak RSS and CPU per process.
 * 5. `verifyBackup` of that backup.
 * 6. With `--encrypted`, the backup again with a random master key (envelope encryption on).
 *
 * Prints every time, workflow / max(raw PostgreSQL, raw ClickHouse) (target ≤ 1.15, stretch ≤ 1.0),
 * verification / backup (target ≤ 1.5), bytes and MB/s, and a per-activity breakdown taken from the
 * workflow histories. Backups and raw files go to a temporary folder that is removed at the end; the
 * organization is dropped too unless `--keep` is given (the next run then reuses it and skips seeding).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Runtime } from '@temporalio/worker';
import { z } from 'zod';
import {
  createScratchDatabase,
  dropScratchDatabase,
  SCRATCH_DATABASE_PREFIX,
} from '../src/activities/postgres/scratch';
import { pgTool } from '../src/activities/postgres/tools';
import { loadConfig, type AppConfig } from '../src/config';
import { backupManifestSchema, type BackupManifest, type BackupSummary } from '../src/contracts/backup';
import type { VerificationReport } from '../src/contracts/verification';
import { JsonLineLogger } from '../src/logger';
import {
  loadPlatformModel,
  organizationDataMap,
  type OrganizationDataMap,
  type PlatformModel,
} from '../src/platform/data-map';
import { listClickHouseObjects } from '../src/platform/clickhouse-catalog';
import { clickHouseDatabaseExists, listOrgSchemas } from '../src/platform/discovery';
import { quoteClickHouseQualified, quotePgIdent, quotePgLiteral } from '../src/platform/quoting';
import {
  dropSeededOrganization,
  SCALE_SIZES,
  seedOrganization,
  type SeedScale,
} from '../src/platform/seed-organization';
import { MANIFEST_FILE } from '../src/storage/backup-store';
import { closeStoreClients, createStoreClients, databaseUrl, type StoreClients } from '../src/store-clients';
import { createWorker } from '../src/worker';
import type { backupOrganization, verifyBackup } from '../src/workflows';
import { ERRORS_ONLY_BUNDLE_LOGGER } from '../test/support/bundle-logger';
import { runTool } from './run-tool';
import { cpuBetween, describeCpu, sampleCpu, withCpu, type CpuSample } from './process-cpu';

/** Content depends only on the seed; bump it when the seeded shape must change. */
const SEED = 'bench-1';
/** Issue 17: the workflow against max(raw PostgreSQL, raw ClickHouse): stretch ≤ 1.0, target ≤ 1.15. */
const TARGET_RATIO = 1.0;
const LIMIT_RATIO = 1.15;
/** How often the resident set size is sampled while the workflow runs. */
const RSS_SAMPLE_MS = 100;

interface Options {
  scale: SeedScale;
  keep: boolean;
  encrypted: boolean;
  verify: boolean;
  seedOnly: boolean;
  /** `pg_dump --jobs` of the honest baseline. */
  jobs: number;
  oldBaseline: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string', default: 'large' },
      keep: { type: 'boolean', default: false },
      encrypted: { type: 'boolean', default: false },
      'skip-verify': { type: 'boolean', default: false },
      'seed-only': { type: 'boolean', default: false },
      jobs: { type: 'string', default: String(Math.max(2, os.availableParallelism())) },
      'skip-old-baseline': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const scale = z.enum(['small', 'medium', 'large']).safeParse(values.scale);
  if (!scale.success) throw new Error(`--scale: expected small, medium or large; got ${JSON.stringify(values.scale)}`);
  return {
    scale: scale.data,
    keep: values.keep === true,
    encrypted: values.encrypted === true,
    verify: values['skip-verify'] !== true,
    seedOnly: values['seed-only'] === true,
    jobs: positiveInteger(values.jobs, '--jobs'),
    oldBaseline: values['skip-old-baseline'] !== true,
  };
}

function positiveInteger(value: string | undefined, name: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name}: expected a whole number >= 1; got ${JSON.stringify(value)}`);
  return n;
}

/** One timed step: what ran, how long, how many bytes it wrote. */
interface Timing {
  label: string;
  seconds: number;
  bytes: number;
  note?: string;
}

const seconds = (startedMs: number) => (performance.now() - startedMs) / 1000;
const mb = (bytes: number) => bytes / 1e6;

// ------------------------------------------------------------------ seeding

function markerOf(scale: SeedScale): string {
  return `eloquent-bench scale=${scale} seed=${SEED}`;
}

/** True when the organization was seeded by this benchmark with this scale and seed, and is still whole. */
async function isSeeded(clients: StoreClients, map: OrganizationDataMap, scale: SeedScale): Promise<boolean> {
  const comment = await clients.postgres.query<{ marker: string | null }>(
    `SELECT obj_description(oid, 'pg_namespace') AS marker FROM pg_namespace WHERE nspname = $1`,
    [map.postgres.mainSchema],
  );
  if (comment.rows[0]?.marker !== markerOf(scale)) return false;
  if (!(await clickHouseDatabaseExists(clients.clickhouse, map.clickhouse.database))) return false;
  const result = await clients.clickhouse.query({
    query: `SELECT toString(count()) AS rows FROM ${quoteClickHouseQualified(map.clickhouse.database, 'analytics_events')}`,
    format: 'JSONEachRow',
  });
  const rows = z.array(z.object({ rows: z.string() })).parse(await result.json<unknown>())[0]?.rows;
  return Number(rows) === SCALE_SIZES[scale].analyticsEvents;
}

async function ensureSeeded(
  clients: StoreClients,
  map: OrganizationDataMap,
  scale: SeedScale,
  model: PlatformModel,
): Promise<Timing> {
  if (await isSeeded(clients, map, scale)) return { label: `seed ${map.orgId} (reused)`, seconds: 0, bytes: 0 };
  process.stdout.write(`seeding ${map.orgId} at scale ${scale} (large takes about 2.5 min)…\n`);
  const started = performance.now();
  await seedOrganization(clients, map.orgId, { scale, seed: SEED, model });
  // Written last: an interrupted seeding leaves no marker and is redone next time.
  await clients.postgres.query(
    `COMMENT ON SCHEMA ${quotePgIdent(map.postgres.mainSchema)} IS ${quotePgLiteral(markerOf(scale))}`,
  );
  return { label: `seed ${map.orgId}`, seconds: seconds(started), bytes: 0 };
}

// ------------------------------------------------------------------ raw baseline

async function fileBytes(file: string): Promise<number> {
  return (await stat(file)).size;
}

interface RawPlan {
  pgDump: { schemas: string[]; run: (file: string) => Promise<void>; runFastest: (file: string) => Promise<void> };
  tables: Array<{
    name: string;
    run: (file: string) => Promise<void>;
    /** The export gzipped by the server at `level`, as backupClickHouse asks for it. */
    runGzipped: (file: string, level: number) => Promise<void>;
  }>;
}

async function planRawBaseline(config: AppConfig, clients: StoreClients, map: OrganizationDataMap): Promise<RawPlan> {
  const schemas = await listOrgSchemas(clients.postgres, map);
  const pgDump = pgTool(config.postgres.binDir, 'pg_dump');
  const tables = (await listClickHouseObjects(clients.clickhouse, map.clickhouse.database)).filter(
    (t) => t.engineClass === 'data',
  );
  // Credentials go through curl's config on stdin, never on the command line.
  const credentials = `user = "${`${config.clickhouse.username}:${config.clickhouse.password}`.replace(/["\\]/g, (c) => `\\${c}`)}"\n`;
  return {
    pgDump: {
      schemas,
      run: (file) =>
        runTool(pgDump, [
          '-Fc',
          '--no-owner',
          '--no-privileges',
          `--dbname=${config.postgres.url}`,
          `--file=${file}`,
          ...schemas.map((s) => `--schema="${s}"`),
        ]),
      // For reference only: the level the workflow dumps with, so a reader sees what the level buys.
      runFastest: (file) =>
        runTool(pgDump, [
          '-Fc',
          '--compress=1',
          '--no-owner',
          '--no-privileges',
          `--dbname=${config.postgres.url}`,
          `--file=${file}`,
          ...schemas.map((s) => `--schema="${s}"`),
        ]),
    },
    tables: tables.map((t) => {
      const query = `SELECT * FROM ${quoteClickHouseQualified(map.clickhouse.database, t.name)} FORMAT Native`;
      return {
        name: t.name,
        run: (file) =>
          runTool(
            'curl',
            ['-sS', '--fail', '-K', '-', '-o', file, '--data-binary', query, config.clickhouse.url],
            credentials,
          ),
        runGzipped: (file, level) => {
          const url = new URL(config.clickhouse.url);
          url.searchParams.set('enable_http_compression', '1');
          url.searchParams.set('http_zlib_compression_level', String(level));
          // No --compressed: the gzip bytes are written as they came, as the backup store keeps them.
          return runTool(
            'curl',
            ['-sS', '--fail', '-K', '-', '-H', 'Accept-Encoding: gzip', '-o', file, '--data-binary', query, url.href],
            credentials,
          );
        },
      };
    }),
  };
}

async function timeStep(label: string, file: string, run: (file: string) => Promise<void>): Promise<Timing> {
  const started = performance.now();
  await run(file);
  const timing: Timing = { label, seconds: seconds(started), bytes: await fileBytes(file) };
  // Printed as they come, so a failure later in the run does not lose them.
  process.stdout.write(`  ${label.trim()}: ${timing.seconds.toFixed(1)} s, ${mb(timing.bytes).toFixed(0)} MB\n`);
  return timing;
}

async function rawClickHouse(plan: RawPlan, dir: string): Promise<Timing[]> {
  const timings: Timing[] = [];
  for (const table of plan.tables)
    timings.push(await timeStep(`  curl Native ${table.name}`, path.join(dir, `${table.name}.native`), table.run));
  return timings;
}

type OldBaseline = { sequential: Timing; parallel: Timing; parts: Timing[]; fastest: Timing };

/**
 * The old comparison (issues 4 and 5): `pg_dump -Fc` at its default gzip level and uncompressed
 * `Native`, sequential then parallel. Kept as a labelled second line; the honest baseline is above.
 */
async function rawBaseline(plan: RawPlan, dir: string): Promise<OldBaseline> {
  const seqDir = path.join(dir, 'sequential');
  await mkdir(seqDir, { recursive: true });
  const seqStarted = performance.now();
  const pg = await timeStep(
    `  pg_dump -Fc (${plan.pgDump.schemas.length} schemas)`,
    path.join(seqDir, 'schemas.dump'),
    plan.pgDump.run,
  );
  const ch = await rawClickHouse(plan, seqDir);
  const sequentialSeconds = seconds(seqStarted);
  const parts = [pg, ...ch];
  const sequential: Timing = {
    label: 'raw total, sequential (pg_dump + Native)',
    seconds: sequentialSeconds,
    bytes: sum(parts.map((p) => p.bytes)),
  };
  await rm(seqDir, { recursive: true, force: true });
  const fastest = await timeStep(
    '  (reference) pg_dump -Fc --compress=1',
    path.join(dir, 'fastest.dump'),
    plan.pgDump.runFastest,
  );
  fastest.note = 'the level backupPostgres uses; not part of the baseline';
  await rm(path.join(dir, 'fastest.dump'), { force: true });

  const parDir = path.join(dir, 'parallel');
  await mkdir(parDir, { recursive: true });
  const parStarted = performance.now();
  const [pgPar, chPar] = await Promise.all([
    timeStep('pg_dump', path.join(parDir, 'schemas.dump'), plan.pgDump.run),
    (async () => {
      const started = performance.now();
      const timings = await rawClickHouse(plan, parDir);
      return { seconds: seconds(started), bytes: sum(timings.map((t) => t.bytes)) };
    })(),
  ]);
  const parallel: Timing = {
    label: 'raw total, parallel (pg_dump ‖ Native)',
    seconds: seconds(parStarted),
    bytes: pgPar.bytes + chPar.bytes,
    note: `pg_dump ${pgPar.seconds.toFixed(1)} s ‖ ClickHouse ${chPar.seconds.toFixed(1)} s`,
  };
  await rm(parDir, { recursive: true, force: true });
  process.stdout.write(
    `raw sequential ${sequential.seconds.toFixed(1)} s, raw parallel ${parallel.seconds.toFixed(1)} s (${parallel.note ?? ''})\n`,
  );
  return { sequential, parallel, parts, fastest };
}

/** Size of every file under `dir` (pg_dump's directory format). */
async function treeBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const sizes = await Promise.all(
    entries.filter((e) => e.isFile()).map((e) => stat(path.join(e.parentPath, e.name)).then((s) => s.size)),
  );
  return sum(sizes);
}

/**
 * The raw tools in their fastest form at the compression the workflow uses: `pg_dump -Fd -j N`
 * (one snapshot, N connections) and ClickHouse `Native` gzipped by the server at the export level.
 */
interface HonestPlan {
  jobs: number;
  gzipLevel: number;
  /** `pg_dump -Fd -j N -Z<level>` into `dir`. */
  pgDirectory: (dir: string, level: number) => Promise<void>;
  /** `pg_dump -Fc -Z0 | zstd -1` into `file`: the codec of backupPostgres, raw. */
  pgCustomZstd: (file: string) => Promise<void>;
  /** Every data table's `Native` export, gzipped by the server at `gzipLevel`, one after the other as backupClickHouse does. */
  clickhouseGzipped: (dir: string) => Promise<void>;
  /**
   * `zstd -d` of that zstd archive into a file, then `pg_restore -j N` of it into a new, empty
   * database (dropped after): what the verification's scratch restore of PostgreSQL does, raw.
   */
  pgRestore: (zstdFile: string, dir: string) => Promise<void>;
}

function planHonestBaseline(config: AppConfig, clients: StoreClients, plan: RawPlan, jobs: number): HonestPlan {
  const pgDump = pgTool(config.postgres.binDir, 'pg_dump');
  const schemaArgs = plan.pgDump.schemas.map((s) => `--schema="${s}"`);
  const common = ['--no-owner', '--no-privileges', `--dbname=${config.postgres.url}`, ...schemaArgs];
  const gzipLevel = config.clickhouse.exportGzipLevel;
  return {
    jobs,
    gzipLevel,
    pgDirectory: (dir, level) =>
      runTool(pgDump, ['--format=directory', `--jobs=${jobs}`, `--compress=${level}`, `--file=${dir}`, ...common]),
    pgCustomZstd: (file) =>
      runTool('bash', [
        '-c',
        'set -o pipefail; out=$1; shift; "$@" | zstd -1 -q -c > "$out"',
        'bash',
        file,
        pgDump,
        '--format=custom',
        '--compress=0',
        ...common,
      ]),
    clickhouseGzipped: async (dir) => {
      for (const table of plan.tables) await table.runGzipped(path.join(dir, `${table.name}.native.gz`), gzipLevel);
    },
    pgRestore: async (zstdFile, dir) => {
      const archive = path.join(dir, 'schemas.dump');
      // A scratch name: a benchmark killed midway leaves a database the scratch sweep removes.
      const database = `${SCRATCH_DATABASE_PREFIX}bench_restore_${randomBytes(4).toString('hex')}`;
      await mkdir(dir, { recursive: true });
      await createScratchDatabase(clients.postgres, database);
      try {
        await runTool('zstd', ['-d', '-q', '-f', '-o', archive, zstdFile]);
        await runTool(pgTool(config.postgres.binDir, 'pg_restore'), [
          '--no-owner',
          '--no-privileges',
          '--exit-on-error',
          `--jobs=${jobs}`,
          `--dbname=${databaseUrl(config.postgres.url, database)}`,
          archive,
        ]);
      } finally {
        await dropScratchDatabase(clients.postgres, database);
      }
    },
  };
}

interface HonestBaseline {
  /** pg_dump -Fd -j N -Z<level> beside the ClickHouse exports. */
  postgres: Timing;
  clickhouse: Timing;
  /** Both stores in parallel, wall time. */
  parallel: Timing;
  cpu: CpuSample;
  /** Alone, for reference: the floor (no compression) and the workflow's codec. */
  floor: Timing;
  zstd: Timing;
  /** The zstd archive restored into an empty database: the verification's floor for PostgreSQL. */
  restore: Timing;
}

/** The honest baseline: both stores in parallel at the workflow's compression, then three references alone. */
async function honestBaseline(honest: HonestPlan, dir: string): Promise<HonestBaseline> {
  await mkdir(dir, { recursive: true });
  const timed = async (
    label: string,
    target: string,
    run: () => Promise<void>,
    bytes: () => Promise<number>,
    keep = false,
  ) => {
    const started = performance.now();
    await run();
    const timing: Timing = { label, seconds: seconds(started), bytes: await bytes() };
    process.stdout.write(`  ${label}: ${timing.seconds.toFixed(1)} s, ${mb(timing.bytes).toFixed(0)} MB\n`);
    if (!keep) await rm(target, { recursive: true, force: true });
    return timing;
  };
  const pgDir = path.join(dir, 'pg-directory');
  const chDir = path.join(dir, 'clickhouse');
  await mkdir(chDir, { recursive: true });
  const started = performance.now();
  const {
    value: [postgres, clickhouse],
    cpu,
  } = await withCpu(() =>
    Promise.all([
      timed(
        `pg_dump -Fd -j${honest.jobs} -Z1`,
        pgDir,
        () => honest.pgDirectory(pgDir, 1),
        () => treeBytes(pgDir),
      ),
      timed(
        `ClickHouse Native, server gzip ${honest.gzipLevel}`,
        chDir,
        () => honest.clickhouseGzipped(chDir),
        () => treeBytes(chDir),
      ),
    ]),
  );
  const parallel: Timing = {
    label: 'raw, parallel (pg_dump -Fd ‖ Native gzip)',
    seconds: seconds(started),
    bytes: postgres.bytes + clickhouse.bytes,
    note: describeCpu(cpu),
  };
  const floorDir = path.join(dir, 'pg-floor');
  const floor = await timed(
    `  (reference) pg_dump -Fd -j${honest.jobs} -Z0`,
    floorDir,
    () => honest.pgDirectory(floorDir, 0),
    () => treeBytes(floorDir),
  );
  floor.note = 'the floor: the server COPY output, nothing compressed';
  const zstdFile = path.join(dir, 'schemas.dump.zst');
  const zstd = await timed(
    '  (reference) pg_dump -Fc -Z0 | zstd -1',
    zstdFile,
    () => honest.pgCustomZstd(zstdFile),
    () => fileBytes(zstdFile),
    true,
  );
  zstd.note = 'the codec backupPostgres uses, raw';
  const restoreDir = path.join(dir, 'pg-restore');
  const restore = await timed(
    `  (reference) zstd -d; pg_restore -j${honest.jobs}`,
    restoreDir,
    () => honest.pgRestore(zstdFile, restoreDir),
    () => fileBytes(path.join(restoreDir, 'schemas.dump')),
  );
  restore.note = "that archive into an empty database: the verification's PostgreSQL floor";
  await rm(zstdFile, { force: true });
  return { postgres, clickhouse, parallel, cpu, floor, zstd, restore };
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

// ------------------------------------------------------------------ workflow runs

/** Peak RSS of this process (worker and activities run here) while `work` runs, and its CPU time. */
async function measured<T>(
  work: () => Promise<T>,
): Promise<{ value: T; seconds: number; peakRssBytes: number; cpuSeconds: number; processes: CpuSample }> {
  const processesBefore = await sampleCpu();
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, RSS_SAMPLE_MS);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  try {
    const value = await work();
    const cpu = process.cpuUsage(cpuBefore);
    return {
      value,
      seconds: seconds(started),
      peakRssBytes: Math.max(peak, process.memoryUsage.rss()),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      processes: cpuBetween(processesBefore, await sampleCpu()),
    };
  } finally {
    clearInterval(timer);
  }
}

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

function eventMs(event: HistoryEvent): number {
  const time = event.eventTime;
  if (!time) return 0;
  return Number(time.seconds ?? 0) * 1000 + (time.nanos ?? 0) / 1e6;
}

function eventIdOf(value: unknown): string {
  return String(value ?? '');
}

/** Each activity and child workflow of a run: when it started after the run did, and how long it took. */
function stepsOf(history: History): Array<{ name: string; offsetSeconds: number; seconds: number }> {
  const events = history.events ?? [];
  const origin = events[0] ? eventMs(events[0]) : 0;
  const scheduled = new Map<string, { name: string; at: number }>();
  const started = new Map<string, number>();
  const steps: Array<{ name: string; offsetSeconds: number; seconds: number }> = [];
  for (const event of events) {
    const id = eventIdOf(event.eventId);
    const s = event.activityTaskScheduledEventAttributes;
    if (s) scheduled.set(id, { name: s.activityType?.name ?? '?', at: eventMs(event) });
    const c = event.startChildWorkflowExecutionInitiatedEventAttributes;
    if (c) scheduled.set(id, { name: `child ${c.workflowType?.name ?? '?'}`, at: eventMs(event) });
    const st = event.activityTaskStartedEventAttributes;
    if (st) started.set(eventIdOf(st.scheduledEventId), eventMs(event));
    const done = event.activityTaskCompletedEventAttributes ?? event.activityTaskFailedEventAttributes;
    const childDone =
      event.childWorkflowExecutionCompletedEventAttributes ?? event.childWorkflowExecutionFailedEventAttributes;
    const key = done ? eventIdOf(done.scheduledEventId) : childDone ? eventIdOf(childDone.initiatedEventId) : undefined;
    const step = key === undefined ? undefined : scheduled.get(key);
    if (key !== undefined && step) {
      const from = started.get(key) ?? step.at;
      steps.push({ name: step.name, offsetSeconds: (from - origin) / 1000, seconds: (eventMs(event) - from) / 1000 });
    }
  }
  return steps;
}

interface WorkerRun {
  backup: {
    summary: BackupSummary;
    seconds: number;
    peakRssBytes: number;
    cpuSeconds: number;
    processes: CpuSample;
    steps: ReturnType<typeof stepsOf>;
    manifest: BackupManifest;
  };
  verify?: {
    report: VerificationReport;
    seconds: number;
    peakRssBytes: number;
    cpuSeconds: number;
    processes: CpuSample;
    steps: ReturnType<typeof stepsOf>;
  };
}

/**
 * Starts a worker in this process with `backupDirectory` (and a master key when given), runs the
 * backup and, when asked, its verification, and stops the worker.
 */
async function runOnWorker(args: {
  config: AppConfig;
  clients: StoreClients;
  client: Client;
  model: PlatformModel;
  bundlePath: string;
  orgId: string;
  backupDirectory: string;
  masterKeyBase64: string | undefined;
  verify: boolean;
}): Promise<WorkerRun> {
  const config: AppConfig = {
    ...args.config,
    backup: {
      ...args.config.backup,
      store: 'filesystem',
      directory: args.backupDirectory,
      masterKeyBase64: args.masterKeyBase64,
    },
  };
  const taskQueue = `bench-${randomUUID().slice(0, 8)}`;
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  try {
    const worker = await createWorker({
      config,
      clients: args.clients,
      connection: nativeConnection,
      workflowBundlePath: args.bundlePath,
      taskQueue,
      model: args.model,
      temporal: args.client,
    });
    return await worker.runUntil(async (): Promise<WorkerRun> => {
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const backupId = `backup-${args.orgId}-bench-${stamp}`;
      const backup = await measured(() =>
        args.client.workflow.execute<typeof backupOrganization>('backupOrganization', {
          taskQueue,
          workflowId: backupId,
          args: [{ orgId: args.orgId, reason: 'benchmark', verify: false }],
        }),
      );
      const summary = backup.value;
      process.stdout.write(
        `backupOrganization ${backup.seconds.toFixed(1)} s (${summary.backupId}, ${mb(summary.bytes).toFixed(0)} MB)\n`,
      );
      const manifestFile = path.join(args.backupDirectory, summary.orgId, summary.backupId, MANIFEST_FILE);
      const manifest = backupManifestSchema.parse(JSON.parse(await readFile(manifestFile, 'utf8')));
      const result: WorkerRun = {
        backup: {
          summary,
          seconds: backup.seconds,
          peakRssBytes: backup.peakRssBytes,
          cpuSeconds: backup.cpuSeconds,
          processes: backup.processes,
          steps: stepsOf(await args.client.workflow.getHandle(backupId).fetchHistory()),
          manifest,
        },
      };
      if (args.verify) {
        const verifyId = `verify-${args.orgId}-bench-${stamp}`;
        const verify = await measured(() =>
          args.client.workflow.execute<typeof verifyBackup>('verifyBackup', {
            taskQueue,
            workflowId: verifyId,
            args: [{ orgId: summary.orgId, backupId: summary.backupId }],
          }),
        );
        result.verify = {
          report: verify.value,
          seconds: verify.seconds,
          peakRssBytes: verify.peakRssBytes,
          cpuSeconds: verify.cpuSeconds,
          processes: verify.processes,
          steps: stepsOf(await args.client.workflow.getHandle(verifyId).fetchHistory()),
        };
      }
      return result;
    });
  } finally {
    await nativeConnection.close();
  }
}

// ------------------------------------------------------------------ report

function row(label: string, secs: number | undefined, bytes: number | undefined, ratio: string, note = ''): string {
  const s = secs === undefined ? '' : secs.toFixed(1);
  const b = bytes === undefined || bytes === 0 ? '' : mb(bytes).toFixed(0);
  const rate = secs && bytes ? (mb(bytes) / secs).toFixed(0) : '';
  return `${label.padEnd(46)}${s.padStart(9)}${b.padStart(11)}${rate.padStart(8)}${ratio.padStart(9)}  ${note}`;
}

function printReport(args: {
  options: Options;
  orgId: string;
  seed: Timing;
  honest: HonestBaseline;
  old: OldBaseline | undefined;
  plain: WorkerRun;
  encrypted: WorkerRun | undefined;
}): void {
  const { honest, old, plain } = args;
  const backup = plain.backup;
  const ratio = (a: number, b: number) => (a / b).toFixed(2);
  const rawBytes = sum(backup.manifest.artifacts.map((a) => a.rawBytes));
  const storedBytes = sum(backup.manifest.artifacts.map((a) => a.bytes));
  const byStore = (store: 'postgres' | 'clickhouse') => backup.manifest.artifacts.filter((a) => a.store === store);
  const baseline = Math.max(honest.postgres.seconds, honest.clickhouse.seconds);
  const lines: string[] = [];
  lines.push('');
  lines.push(
    `backup benchmark: organization ${args.orgId}, scale ${args.options.scale}, seed ${SEED}; ${os.cpus().length} CPUs, load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  lines.push(
    `${'step'.padEnd(46)}${'seconds'.padStart(9)}${'MB'.padStart(11)}${'MB/s'.padStart(8)}${'ratio'.padStart(9)}  notes`,
  );
  lines.push('-'.repeat(110));
  lines.push(row(args.seed.label, args.seed.seconds || undefined, undefined, ''));
  lines.push(row(honest.postgres.label, honest.postgres.seconds, honest.postgres.bytes, '', 'beside ClickHouse'));
  lines.push(row(honest.clickhouse.label, honest.clickhouse.seconds, honest.clickhouse.bytes, '', 'beside pg_dump'));
  lines.push(row(honest.parallel.label, honest.parallel.seconds, honest.parallel.bytes, '', honest.parallel.note));
  lines.push(row(honest.floor.label, honest.floor.seconds, honest.floor.bytes, '', honest.floor.note));
  lines.push(row(honest.zstd.label, honest.zstd.seconds, honest.zstd.bytes, '', honest.zstd.note));
  lines.push(row(honest.restore.label, honest.restore.seconds, honest.restore.bytes, '', honest.restore.note));
  const wfNote = `stored ${mb(storedBytes).toFixed(0)} MB of ${mb(rawBytes).toFixed(0)} MB streamed in; peak RSS ${mb(backup.peakRssBytes).toFixed(0)} MB; ${describeCpu(backup.processes)}`;
  lines.push(
    row('backupOrganization (verify: false)', backup.seconds, storedBytes, ratio(backup.seconds, baseline), wfNote),
  );
  for (const step of backup.steps)
    lines.push(row(`  ${step.name} @${step.offsetSeconds.toFixed(1)}s`, step.seconds, undefined, ''));
  for (const store of ['postgres', 'clickhouse'] as const)
    lines.push(
      row(
        `  ${store} artifacts`,
        undefined,
        sum(byStore(store).map((a) => a.bytes)),
        '',
        `streamed in ${mb(sum(byStore(store).map((a) => a.rawBytes))).toFixed(0)} MB`,
      ),
    );
  if (plain.verify) {
    const v = plain.verify;
    lines.push(
      row(
        `verifyBackup (${v.report.result})`,
        v.seconds,
        undefined,
        ratio(v.seconds, backup.seconds),
        `ratio = verify / backup; peak RSS ${mb(v.peakRssBytes).toFixed(0)} MB; ${describeCpu(v.processes)}`,
      ),
    );
    for (const step of v.steps)
      lines.push(row(`  ${step.name} @${step.offsetSeconds.toFixed(1)}s`, step.seconds, undefined, ''));
  }
  if (args.encrypted) {
    const e = args.encrypted.backup;
    lines.push(
      row(
        'backupOrganization, encrypted',
        e.seconds,
        sum(e.manifest.artifacts.map((a) => a.bytes)),
        ratio(e.seconds, baseline),
        `${ratio(e.seconds, backup.seconds)}× unencrypted; ${describeCpu(e.processes)}`,
      ),
    );
    for (const step of e.steps)
      lines.push(row(`  ${step.name} @${step.offsetSeconds.toFixed(1)}s`, step.seconds, undefined, ''));
  }
  if (old) {
    lines.push(
      row(
        '(old comparison) raw pg_dump -Fc default gzip ‖ Native',
        old.parallel.seconds,
        old.parallel.bytes,
        '',
        old.parallel.note,
      ),
    );
  }
  lines.push('-'.repeat(110));
  const best = backup.seconds / baseline;
  const verdict =
    best <= TARGET_RATIO ? 'meets the stretch target' : best <= LIMIT_RATIO ? 'meets the target' : 'ABOVE THE TARGET';
  lines.push(
    `workflow / max(raw PostgreSQL, raw ClickHouse) = ${ratio(backup.seconds, baseline)} (max(${honest.postgres.seconds.toFixed(1)} s pg_dump -Fd -j${args.options.jobs} -Z1, ${honest.clickhouse.seconds.toFixed(1)} s ${honest.clickhouse.label}); target ≤ ${LIMIT_RATIO.toFixed(2)}, stretch ≤ ${TARGET_RATIO.toFixed(2)}: ${verdict})`,
  );
  lines.push(
    `workflow / floor (pg_dump -Fd -Z0) = ${ratio(backup.seconds, Math.max(honest.floor.seconds, honest.clickhouse.seconds))}; workflow / raw parallel wall = ${ratio(backup.seconds, honest.parallel.seconds)}`,
  );
  if (old)
    lines.push(
      `(old comparison, default gzip) workflow / raw-parallel = ${ratio(backup.seconds, old.parallel.seconds)}; workflow / raw-sequential = ${ratio(backup.seconds, old.sequential.seconds)}`,
    );
  if (plain.verify)
    lines.push(
      `verification ${plain.verify.seconds.toFixed(1)} s next to backup ${backup.seconds.toFixed(1)} s: ${ratio(plain.verify.seconds, backup.seconds)}× (target ≤ 1.5); raw restore (zstd -d; pg_restore -j${args.options.jobs}) ${honest.restore.seconds.toFixed(1)} s = ${ratio(honest.restore.seconds, backup.seconds)}× the backup, verification / raw restore = ${ratio(plain.verify.seconds, honest.restore.seconds)}`,
    );
  process.stdout.write(`${lines.join('\n')}\n`);
}

// ------------------------------------------------------------------ main

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  Runtime.install({ logger: new JsonLineLogger('WARN') });
  const config = loadConfig();
  const model = await loadPlatformModel(config.platformModelFile);
  const orgId = `bench_${options.scale}`;
  const map = organizationDataMap(orgId, model);
  const clients = createStoreClients(config);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'eloquent-bench-'));
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  try {
    const seed = await ensureSeeded(clients, map, options.scale, model);
    if (options.seedOnly) {
      process.stdout.write(`${orgId} is seeded (${seed.label}, ${seed.seconds.toFixed(1)} s)\n`);
      return;
    }
    process.stdout.write('bundling workflows…\n');
    const bundlePath = path.join(workDir, 'workflow-bundle.js');
    const { code } = await bundleWorkflowCode({
      workflowsPath: path.join(__dirname, '..', 'src', 'workflows', 'index.ts'),
      logger: ERRORS_ONLY_BUNDLE_LOGGER,
    });
    await writeFile(bundlePath, code);

    const plan = await planRawBaseline(config, clients, map);
    process.stdout.write(
      `honest baseline: pg_dump -Fd -j${options.jobs} -Z1 ‖ ClickHouse Native gzipped by the server, then references…\n`,
    );
    const honest = await honestBaseline(
      planHonestBaseline(config, clients, plan, options.jobs),
      path.join(workDir, 'honest'),
    );
    let old: OldBaseline | undefined;
    if (options.oldBaseline) {
      process.stdout.write(
        'old comparison: pg_dump -Fc (default gzip) and ClickHouse Native, sequential then parallel…\n',
      );
      old = await rawBaseline(plan, path.join(workDir, 'raw'));
    }

    process.stdout.write('backupOrganization and verifyBackup…\n');
    const common = { config, clients, client, model, bundlePath, orgId };
    const plain = await runOnWorker({
      ...common,
      backupDirectory: path.join(workDir, 'backups'),
      masterKeyBase64: undefined,
      verify: options.verify,
    });
    let encrypted: WorkerRun | undefined;
    if (options.encrypted) {
      process.stdout.write('backupOrganization with encryption…\n');
      encrypted = await runOnWorker({
        ...common,
        backupDirectory: path.join(workDir, 'backups-encrypted'),
        masterKeyBase64: randomBytes(32).toString('base64'),
        verify: false,
      });
    }
    printReport({ options, orgId, seed, honest, old, plain, encrypted });
  } finally {
    await rm(workDir, { recursive: true, force: true });
    if (!options.keep && !options.seedOnly) {
      process.stdout.write(`dropping ${orgId} (pass --keep to reuse it next time)\n`);
      await dropSeededOrganization(clients, orgId, model).catch((err: unknown) =>
        process.stderr.write(`could not drop ${orgId}: ${String(err)}\n`),
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
