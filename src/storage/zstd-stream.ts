import { spawn } from 'node:child_process';
import { Duplex, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

/**
 * zstd through Debian's `zstd` binary (Node 20's zlib has no zstd): a Duplex whose writes go to the
 * child's stdin and whose reads come from its stdout. Compression runs in the child's own process,
 * so it takes a core of its own instead of the worker's event loop, and is several times cheaper
 * than gzip at level 1 for a better ratio (bench/backup.ts).
 */

/** The binary on PATH; `zstd` is in Debian's `zstd` package (installed by the stack's apt step). */
const ZSTD_BINARY = 'zstd';
/** Level 1: the fastest of the regular levels; the dump, not the codec, is the limit then. */
const ZSTD_LEVEL = 1;

/** The zstd process failed: a code the artifact pipeline classifies like zlib's `Z_…` codes. */
export class ZstdError extends Error {
  override readonly name = 'ZstdError';
  readonly code = 'ERR_ZSTD';
}

/**
 * A stream that compresses (`compress`) or decompresses (`decompress`) with zstd. It ends only
 * after the child exited with 0; a non-zero exit destroys it with a {@link ZstdError} carrying the
 * child's stderr (e.g. `unknown header` for bytes that are not zstd). Destroying it kills the child.
 */
export function createZstdStream(mode: 'compress' | 'decompress'): Duplex {
  const args = mode === 'compress' ? [`-${ZSTD_LEVEL}`, '-q', '-c'] : ['-d', '-q', '-c'];
  const child = spawn(ZSTD_BINARY, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  let childError: Error | undefined;
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => {
    child.on('error', (err) => {
      // Not a corrupt stream: the binary is missing or cannot start (install Debian's `zstd`).
      childError = new Error(`cannot run ${ZSTD_BINARY}: ${err.message}`, { cause: err });
      resolve(null);
    });
    child.on('close', (code) => resolve(code));
  });
  const failure = (code: number | null): Error =>
    childError ?? new ZstdError(`${ZSTD_BINARY} ${mode} failed: ${stderr.trim() || `exit code ${String(code)}`}`);

  const stream = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (child.stdin.write(chunk)) callback();
      else child.stdin.once('drain', () => callback());
    },
    final(callback) {
      child.stdin.end();
      callback();
    },
    read() {
      child.stdout.resume();
    },
    destroy(err, callback) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      callback(err);
    },
  });
  child.stdout.on('data', (d: Buffer) => {
    if (!stream.push(d)) child.stdout.pause();
  });
  // The child's stdin breaks (EPIPE) when it died; its exit status says why.
  child.stdin.on('error', () => undefined);
  void exited.then((code) => {
    if (stream.destroyed) return;
    if (code === 0 && !childError) stream.push(null);
    else stream.destroy(failure(code));
  });
  return stream;
}

/**
 * Decompresses a zstd stream straight into `file` (created or replaced): the zstd process writes the
 * file itself, so the original bytes, often several times the compressed ones, never pass through
 * the worker. Resolves when zstd exited with 0 and `input` ended cleanly.
 * @throws `input`'s own error when it failed (a checksum, the store), else a {@link ZstdError}.
 */
export async function decompressZstdToFile(input: Readable, file: string, signal?: AbortSignal): Promise<void> {
  const child = spawn(ZSTD_BINARY, ['-d', '-q', '-f', '-o', file], { stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`cannot run ${ZSTD_BINARY}: ${err.message}`, { cause: err })));
    child.on('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  let inputError: unknown;
  input.once('error', (err: unknown) => (inputError ??= err));
  const fed = pipeline(input, child.stdin, signal ? { signal } : {}).then(
    () => undefined,
    (err: unknown) => err,
  );
  const feedError = await fed;
  // A failed feed (the input's error, a cancellation) must not leave zstd waiting on its stdin.
  if (feedError !== undefined && child.exitCode === null) child.kill('SIGKILL');
  const code = await exited;
  if (inputError !== undefined) throw inputError;
  if (signal?.aborted) throw feedError ?? signal.reason;
  if (code !== 0) throw new ZstdError(`${ZSTD_BINARY} -d failed: ${stderr.trim() || `exit code ${String(code)}`}`);
  if (feedError !== undefined) throw feedError;
}

/**
 * Compresses what another process writes, with zstd reading that process's output pipe itself: the
 * original bytes go from one child to the other and never through the worker, which reads only the
 * compressed `output`. `done` resolves when zstd exited with 0.
 * @param source the producing child's stdout (a pipe); the worker's own copy of it is closed here.
 * @throws (from `done`) a {@link ZstdError} with zstd's stderr.
 */
export function compressZstdFrom(source: Readable): { output: Readable; done: Promise<void> } {
  const child = spawn(ZSTD_BINARY, [`-${ZSTD_LEVEL}`, '-q', '-c'], { stdio: [source, 'pipe', 'pipe'] });
  // zstd holds its own descriptor of the pipe now; the worker's would only keep it open.
  source.destroy();
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (err) => reject(new Error(`cannot run ${ZSTD_BINARY}: ${err.message}`, { cause: err })));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else
        reject(new ZstdError(`${ZSTD_BINARY} compress failed: ${stderr.trim() || `exit ${String(code ?? signal)}`}`));
    });
  });
  done.catch(() => undefined);
  return { output: child.stdout, done };
}
