import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port';
import { REPO_ROOT } from './paths';

const run = promisify(execFile);

/** A server a test started for itself; `stop()` ends it and removes every file it had. */
export interface ScratchServer {
  url: string;
  stop(): Promise<void>;
}

/** initdb and pg_ctl refuse root: as root, run them as the machine's `postgres` user. */
async function asPostgresUser(command: string, args: string[]): Promise<void> {
  const root = process.getuid?.() === 0;
  await run(root ? 'runuser' : command, root ? ['-u', 'postgres', '--', command, ...args] : args, {
    timeout: 120_000,
  });
}

/**
 * A fresh PostgreSQL cluster on a free port of 127.0.0.1 (`initdb` into a temporary directory,
 * trust authentication, fsync off), superuser `postgres`. Uses the `initdb`/`pg_ctl` on PATH.
 */
export async function startScratchPostgres(): Promise<ScratchServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'scratch-pg-'));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    await chown(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const port = await freePort();
  const data = path.join(dir, 'data');
  try {
    await asPostgresUser('initdb', [
      '-D',
      data,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C',
      '--no-sync',
    ]);
    await asPostgresUser('pg_ctl', [
      '-D',
      data,
      '-l',
      path.join(dir, 'server.log'),
      '-w',
      '-o',
      `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=40`,
      'start',
    ]);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async stop() {
      await asPostgresUser('pg_ctl', ['-D', data, '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A second ClickHouse server, as `scripts/stack.sh up clickhouse` starts the usual one (the
 * package's config with its paths and ports moved), with a state directory and ports of its own.
 */
export async function startScratchClickHouse(): Promise<ScratchServer> {
  const state = await mkdtemp(path.join(tmpdir(), 'scratch-ch-'));
  const [http, tcp, interserver] = [await freePort(), await freePort(), await freePort()];
  const url = `http://127.0.0.1:${http}`;
  const pidFile = path.join(state, 'clickhouse', 'clickhouse.pid');
  const stop = async () => {
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGTERM');
        for (let i = 0; i < 150; i++) {
          process.kill(pid, 0);
          await new Promise((r) => setTimeout(r, 200));
        }
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await rm(state, { recursive: true, force: true });
  };
  try {
    await run('bash', [path.join(REPO_ROOT, 'scripts', 'stack.sh'), 'up', 'clickhouse'], {
      env: {
        ...process.env,
        ELOQUENT_STATE_DIR: state,
        CLICKHOUSE_URL: url,
        CLICKHOUSE_TCP_PORT: String(tcp),
        CLICKHOUSE_INTERSERVER_PORT: String(interserver),
      },
      timeout: 180_000,
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop };
}

/**
 * A second S3-compatible server: the gofakes3 that `scripts/stack.sh up s3` built into the tools
 * cache, on a free port, with its objects in memory. Unlike the shared one (bolt backend, which
 * knows no versions) its backend implements versioning, so a test can turn it on with
 * PutBucketVersioning. One bucket, `bucket`, exists from the start.
 */
export async function startScratchS3(bucket: string): Promise<ScratchServer> {
  const cache = process.env.ELOQUENT_TOOLS_CACHE ?? path.join(homedir(), '.cache', 'eloquent-recovery');
  const binary = path.join(cache, 'gofakes3-v1.2.0', 'gofakes3-server');
  if (!existsSync(binary))
    throw new Error(`${binary} is missing: run \`bash scripts/stack.sh up s3\`, which builds it`);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const server = spawn(binary, ['-addr', `127.0.0.1:${port}`, '-bucket', bucket], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
  const stop = async () => {
    server.kill('SIGTERM');
    await exited;
  };
  for (let attempt = 0; ; attempt++) {
    const answer = await fetch(`${url}/${bucket}`, { method: 'HEAD' }).catch(() => undefined);
    if (answer?.ok) break;
    if (attempt >= 100 || server.exitCode !== null) {
      await stop();
      throw new Error(`gofakes3 did not answer on ${url} within 10 s`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { url, stop };
}
