import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { compressZstdFrom } from '../../storage/zstd-stream';
import { ProgressTap } from '../support/artifact-stream';
import { classifyToolFailure } from './errors';
import { pgToolInvocation } from './tool-environment';

/** `pg_dump`'s path, from the configured directory or PATH. */
export function pgTool(binDir: string, tool: 'pg_dump' | 'pg_dumpall' | 'pg_restore' | 'psql'): string {
  return binDir ? path.join(binDir, tool) : tool;
}

/** A tool's `--version` output, remembered for {@link VERSION_MEMORY_MS}. */
export async function toolVersion(command: string): Promise<string> {
  const known = knownVersions.get(command);
  if (known && Date.now() - known.at < VERSION_MEMORY_MS) return known.version;
  const version = readToolVersion(command);
  const entry = { version, at: Date.now() };
  knownVersions.set(command, entry);
  // A failure is not remembered: the next backup asks again.
  version.catch(() => knownVersions.get(command) === entry && knownVersions.delete(command));
  return version;
}

/**
 * How long a tool's `--version` is remembered: a worker asks each tool once a minute instead of once
 * per backup (a process of about 100 ms on two cores, a twentieth of a small organization's backup).
 * A tool upgraded under a running worker is seen within the minute.
 */
const VERSION_MEMORY_MS = 60_000;
const knownVersions = new Map<string, { version: Promise<string>; at: number }>();

/** Runs `command --version` and returns what it printed. */
async function readToolVersion(command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out.trim()) : reject(new Error(`${command} --version exited with ${code}`)),
    );
  });
}

/** The major version in "pg_dump (PostgreSQL) 15.20 (Debian…)" or "15.20". */
export function majorVersion(version: string): number {
  const match = /(\d+)(?:\.\d+)?/.exec(version.replace(/^[^\d]*/, ''));
  return match ? Number(match[1]) : NaN;
}

/**
 * Runs a trusted tool (pg_dump) and streams its stdout into `sink`; stderr is kept for the message.
 * Cancellation kills the tool. A non-zero exit fails with the tool's own words.
 * @param options.zstd the tool's output goes straight into zstd (`compressZstdFrom`), which reads
 *   the tool's pipe itself; `sink` and `onBytes` get the compressed bytes. Piping a dump of 1.5 GB
 *   through the worker into zstd cost a core a second per 1.5 GB beside the dump (bench/backup.ts).
 */
export async function runToolInto(
  command: string,
  args: string[],
  sink: NodeJS.WritableStream,
  signal: AbortSignal,
  onBytes: (bytes: number) => void,
  context: { orgId: string; object: string },
  options: { zstd?: boolean } = {},
): Promise<void> {
  const invocation = pgToolInvocation(args);
  const child = spawn(command, invocation.args, { stdio: ['ignore', 'pipe', 'pipe'], signal, env: invocation.env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  const compressed = options.zstd ? compressZstdFrom(child.stdout) : undefined;
  try {
    await pipeline(compressed?.output ?? child.stdout, new ProgressTap(onBytes), sink);
  } catch (err) {
    // zstd's output ended early: the tool's exit says why when it failed first (zstd then read an
    // early end and stopped, or was killed with the tool on cancellation).
    if (child.exitCode === null) child.kill('SIGKILL');
    const code = await exited.catch(() => null);
    if (code !== 0 && code !== null)
      throw classifyToolFailure(path.basename(command), stderr.trim() || `exit code ${code}`, context);
    throw err;
  }
  const code = await exited;
  if (code !== 0) throw classifyToolFailure(path.basename(command), stderr.trim() || `exit code ${code}`, context);
  await compressed?.done;
}

/** Runs a tool that reads `input` on stdin; fails with its own words. Resolves with its stderr (its first 64 KiB). */
export async function runToolFrom(
  command: string,
  args: string[],
  input: NodeJS.ReadableStream | undefined,
  signal: AbortSignal,
  what: string,
  context: { orgId?: string; object?: string } = {},
): Promise<string> {
  const invocation = pgToolInvocation(args);
  const child = spawn(command, invocation.args, {
    stdio: [input ? 'pipe' : 'ignore', 'ignore', 'pipe'],
    signal,
    env: invocation.env,
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 65536) stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const feeding =
    input && child.stdin ? pipeline(input, child.stdin).catch((err: unknown) => err) : Promise.resolve(undefined);
  const [code, feedError] = await Promise.all([exited, feeding]);
  if (code !== 0) throw classifyToolFailure(what, stderr.trim() || `exit code ${code}`, context);
  if (feedError instanceof Error && !/EPIPE/.test(feedError.message)) throw feedError;
  return stderr;
}
