import { readdir, readFile } from 'node:fs/promises';

/**
 * CPU time per process group, read from /proc (Linux), to say where a benchmark's time went: the
 * worker itself (Node: activities, pipeline, hashing), the tools it ran (pg_dump, zstd, pg_restore,
 * curl: children it waited for), the PostgreSQL server (backends, and the ones that exited, counted in
 * the postmaster's children time), the ClickHouse server and the Temporal dev server (its history
 * store: every workflow and activity task is a write there). The servers are shared: their figures
 * include whatever else ran on them meanwhile, so read them on a quiet machine.
 */
export interface CpuSample {
  workerSeconds: number;
  toolSeconds: number;
  postgresSeconds: number;
  clickhouseSeconds: number;
  temporalSeconds: number;
}

/** Clock ticks per second of /proc's times; 100 on every Linux this runs on (getconf CLK_TCK). */
const TICKS_PER_SECOND = 100;

interface ProcStat {
  comm: string;
  ppid: number;
  /** utime + stime, seconds. */
  own: number;
  /** cutime + cstime: children waited for, seconds. */
  children: number;
}

async function readStat(pid: string): Promise<ProcStat | undefined> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
  if (!text) return undefined;
  // The command name is in parentheses and may hold spaces: the fields follow its last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const fields = text
    .slice(close + 2)
    .split(' ')
    .map((f) => Number(f));
  // After the name: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
  const at = (i: number) => fields[i] ?? 0;
  return {
    comm,
    ppid: at(1),
    own: (at(11) + at(12)) / TICKS_PER_SECOND,
    children: (at(13) + at(14)) / TICKS_PER_SECOND,
  };
}

/** CPU seconds so far of this process, its waited-for children and both servers. */
export async function sampleCpu(): Promise<CpuSample> {
  const self = await readStat('self');
  let postgresSeconds = 0;
  let clickhouseSeconds = 0;
  let temporalSeconds = 0;
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name));
  const stats = await Promise.all(pids.map(async (pid) => ({ pid: Number(pid), stat: await readStat(pid) })));
  const postgresPids = new Set(stats.filter((s) => s.stat?.comm === 'postgres').map((s) => s.pid));
  for (const { stat } of stats) {
    if (!stat) continue;
    if (stat.comm === 'postgres') {
      postgresSeconds += stat.own;
      // The postmaster (whose parent is not postgres) holds the time of backends that exited.
      if (!postgresPids.has(stat.ppid)) postgresSeconds += stat.children;
    } else if (stat.comm.startsWith('clickhouse')) clickhouseSeconds += stat.own;
    else if (stat.comm === 'temporal') temporalSeconds += stat.own;
  }
  return {
    workerSeconds: self?.own ?? 0,
    toolSeconds: self?.children ?? 0,
    postgresSeconds,
    clickhouseSeconds,
    temporalSeconds,
  };
}

/** CPU spent between two samples. */
export function cpuBetween(before: CpuSample, after: CpuSample): CpuSample {
  return {
    workerSeconds: after.workerSeconds - before.workerSeconds,
    toolSeconds: after.toolSeconds - before.toolSeconds,
    postgresSeconds: after.postgresSeconds - before.postgresSeconds,
    clickhouseSeconds: after.clickhouseSeconds - before.clickhouseSeconds,
    temporalSeconds: after.temporalSeconds - before.temporalSeconds,
  };
}

/** `CPU: worker 3.1 s, tools 9.8 s, postgres 12.0 s, clickhouse 4.2 s, temporal 0.3 s`. */
export function describeCpu(cpu: CpuSample, digits = 1): string {
  const s = (v: number) => `${v.toFixed(digits)} s`;
  return `CPU: worker ${s(cpu.workerSeconds)}, tools ${s(cpu.toolSeconds)}, postgres ${s(cpu.postgresSeconds)}, clickhouse ${s(cpu.clickhouseSeconds)}, temporal ${s(cpu.temporalSeconds)}`;
}

/** Runs `work` and returns its value with the CPU each process group spent meanwhile. */
export async function withCpu<T>(work: () => Promise<T>): Promise<{ value: T; cpu: CpuSample }> {
  const before = await sampleCpu();
  const value = await work();
  return { value, cpu: cpuBetween(before, await sampleCpu()) };
}
