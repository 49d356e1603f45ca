import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { Pool } from 'pg';
import { loadConfig } from '../src/config';
import { REPO_ROOT } from './support/paths';

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

/** The Dockerfile's instructions, continuation lines joined and comments dropped (no Docker engine here). */
async function parseDockerfile(file: string): Promise<Instruction[]> {
  const lines = (await readFile(file, 'utf8')).split('\n');
  const instructions: Instruction[] = [];
  let pending = '';
  let startedAt = 0;
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) return;
    if (pending === '') startedAt = index + 1;
    pending += `${pending === '' ? '' : ' '}${line.replace(/\\$/, '').trim()}`;
    if (line.endsWith('\\')) return;
    const [keyword = '', ...rest] = pending.split(/\s+/);
    instructions.push({ keyword: keyword.toUpperCase(), args: rest.join(' '), line: startedAt });
    pending = '';
  });
  return instructions;
}

describe('the worker image (deploy/Dockerfile), checked without a Docker engine', () => {
  let instructions: Instruction[];
  let packageScripts: Record<string, string>;

  beforeAll(async () => {
    instructions = await parseDockerfile(path.join(REPO_ROOT, 'deploy', 'Dockerfile'));
    packageScripts = (
      JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
  });

  it('copies only files that exist in the repository (the build context is its root)', () => {
    const copies = instructions.filter((i) => i.keyword === 'COPY' && !i.args.startsWith('--from'));
    expect(copies.length).toBeGreaterThan(3);
    for (const copy of copies) {
      const parts = copy.args.split(/\s+/);
      for (const source of parts.slice(0, -1))
        expect([copy.line, source, existsSync(path.join(REPO_ROOT, source))]).toEqual([copy.line, source, true]);
    }
  });

  it('runs npm scripts that package.json has, and starts the worker that `tsc` builds from src/worker.ts', () => {
    const runs = instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const npmScripts = runs.flatMap((args) => [...args.matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1] ?? ''));
    expect(npmScripts).toContain('bundle');
    for (const script of npmScripts) expect(Object.keys(packageScripts)).toContain(script);
    expect(packageScripts.bundle).toMatch(/scripts\/bundle-workflows\.ts/);
    const cmd = instructions.filter((i) => i.keyword === 'CMD').pop();
    expect(cmd?.args).toBe('["node", "dist/src/worker.js"]');
    expect(existsSync(path.join(REPO_ROOT, 'src', 'worker.ts'))).toBe(true);
    // The image's bundle is where `npm run bundle` writes it by default, and the worker is told so.
    expect(
      instructions.some(
        (i) => i.keyword === 'ENV' && i.args.includes('WORKFLOW_BUNDLE_PATH=/app/dist/workflow-bundle.js'),
      ),
    ).toBe(true);
  });

  it("installs the pg_dump of the local server's major version, and the helm the Kubernetes tests build", async () => {
    const arg = (name: string) =>
      instructions.find((i) => i.keyword === 'ARG' && i.args.startsWith(`${name}=`))?.args.split('=')[1];
    const pool = new Pool({ connectionString: loadConfig().postgres.url, max: 1 });
    try {
      const { rows } = await pool.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      expect(Number(arg('PG_MAJOR'))).toBe(Math.floor(Number(rows[0]?.v) / 10000));
    } finally {
      await pool.end();
    }
    expect(instructions.some((i) => i.keyword === 'RUN' && i.args.includes('"postgresql-client-${PG_MAJOR}"'))).toBe(
      true,
    );
    expect(
      instructions.some(
        (i) => i.keyword === 'ENV' && i.args.includes('POSTGRES_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin'),
      ),
    ).toBe(true);
    const kubeBuild = await readFile(path.join(REPO_ROOT, 'scripts', 'kube-build.sh'), 'utf8');
    expect(arg('HELM_VERSION')).toBe(/^HELM_VERSION=(\S+)/m.exec(kubeBuild)?.[1]);
  });

  it('runs as an unprivileged user and serves metrics on every interface of the pod', () => {
    expect(instructions.filter((i) => i.keyword === 'USER').pop()?.args).toBe('node');
    expect(instructions.some((i) => i.keyword === 'ENV' && i.args.includes('METRICS_HOST=0.0.0.0'))).toBe(true);
  });
});
