import { spawn } from 'node:child_process';

/**
 * Runs a benchmark's raw tool (pg_dump, curl, a `bash -c` pipeline) to completion, its output
 * ignored; `stdin` is written to it (curl reads its credentials there).
 * @throws Error with the tool's exit code and the start of its stderr when it fails.
 */
export async function runTool(command: string, args: string[], stdin = ''): Promise<void> {
  const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'] });
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
