import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { toolVersion } from '../src/activities/postgres/tools';

/**
 * A backup checks pg_dump's version against the server's. Spawning `pg_dump --version` for every
 * backup cost about 100 ms of a small organization's 1.9 s (bench:platform), so a worker remembers a
 * tool's answer for a minute, and never remembers a failure.
 */
describe('toolVersion', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tool-version-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** A tool that records each run in `<name>.runs` and prints `output`, or fails while `<name>.fail` exists. */
  async function fakeTool(name: string, output: string): Promise<{ command: string; runs: () => Promise<number> }> {
    const command = path.join(dir, name);
    const runs = `${command}.runs`;
    await writeFile(
      command,
      `#!/bin/sh\necho run >> '${runs}'\nif [ -e '${command}.fail' ]; then exit 3; fi\necho '${output}'\n`,
      { mode: 0o755 },
    );
    return {
      command,
      runs: async () => (await readFile(runs, 'utf8').catch(() => '')).split('\n').filter(Boolean).length,
    };
  }

  it('runs a tool once for many backups and gives each the same answer', async () => {
    const tool = await fakeTool('pg_dump', 'pg_dump (PostgreSQL) 15.9');
    const answers = await Promise.all([toolVersion(tool.command), toolVersion(tool.command)]);
    answers.push(await toolVersion(tool.command));
    expect(answers).toEqual(Array(3).fill('pg_dump (PostgreSQL) 15.9'));
    expect(await tool.runs()).toBe(1);
  });

  it('asks again after a failure', async () => {
    const tool = await fakeTool('pg_dump_failing', 'pg_dump (PostgreSQL) 16.1');
    await writeFile(`${tool.command}.fail`, '');
    await expect(toolVersion(tool.command)).rejects.toThrow(/--version exited with 3/);
    await rm(`${tool.command}.fail`);
    await expect(toolVersion(tool.command)).resolves.toBe('pg_dump (PostgreSQL) 16.1');
    expect(await tool.runs()).toBe(2);
  });
});
