import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { REPO_ROOT, WORKFLOW_BUNDLE_PATH } from './paths';

/**
 * A worker in a separate process (`src/worker.ts`, as in production), so a test can kill it with
 * SIGKILL in the middle of an activity — something an in-process worker cannot show.
 */
export interface WorkerProcess {
  child: ChildProcess;
  /** SIGKILL: no graceful shutdown, no heartbeat, exactly like a crashed pod. */
  kill(): Promise<void>;
  /** SIGTERM and wait: the graceful path. */
  stop(): Promise<void>;
}

export async function startWorkerProcess(taskQueue: string, env: NodeJS.ProcessEnv = {}): Promise<WorkerProcess> {
  // `node --import tsx` runs the worker in this one process; the tsx CLI would fork a child that a
  // SIGKILL of the parent leaves running.
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO_ROOT, 'src', 'worker.ts')], {
    cwd: REPO_ROOT,
    // Metrics are off unless a test asks for them (two workers must not race for one port).
    env: { ...process.env, METRICS_PORT: '0', ...env, TEMPORAL_TASK_QUEUE: taskQueue, WORKFLOW_BUNDLE_PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker process did not start within 60 s:\n${output}`)), 60_000);
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes('worker started')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr?.on('data', onData);
    child.stdout?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker process exited with ${code} before starting:\n${output}`));
    });
  });
  return {
    child,
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}
