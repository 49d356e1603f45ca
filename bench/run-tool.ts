import { spawn } from 'node:child_process';
import { pgToolInvocation } from '../src/activities/postgres/tool-environment';

/**
 * Runs a benchmark's raw tool (pg_dump, curl, a `bash -c` pipeline) to completion, its output
 * ignored; `stdin` is written to it (curl reads its credentials there). The password of every
 * `--dbname=<URI>` argument moves into `PGPASSWORD` as the workflows' own tools do
 * (tool-environment.ts), so neither pg_dump nor a `bash -c '… "$@" | zstd'` around it shows it in `ps`.
 * @throws Error with the tool's exit code and the start of its stderr when it fails.
 */
export async function runTool(command: string, args: string[], stdin = ''): Promise<void> {
  const invocation = pgToolInvocation(args);
  const child = spawn(command, invocation.args, { stdio: ['pipe', 'ignore', 'pipe'], env: invocation.env });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 4096) stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin.end(stdin);
  const code = await exited;
  if (code !== 0) throw new Error(`${command} exited with ${String(code)}: ${stderr.trim()}`);
}
