import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './support/paths';

const run = promisify(execFile);
const RULES_DIR = path.join(REPO_ROOT, 'deploy', 'prometheus');

/** promtool from the tools cache, built from the Go module proxy on first use (scripts/promtool-build.sh). */
async function promtool(): Promise<string> {
  const { stdout } = await run('bash', [path.join(REPO_ROOT, 'scripts', 'promtool-build.sh')], {
    maxBuffer: 1 << 20,
    timeout: 40 * 60_000,
  });
  return stdout.trim();
}

describe('Prometheus alert rules (deploy/prometheus/)', () => {
  let bin: string;
  beforeAll(async () => {
    bin = await promtool();
  }, 40 * 60_000);

  it('parse and pass promtool check rules', async () => {
    const { stdout } = await run(bin, ['check', 'rules', path.join(RULES_DIR, 'alerts.yaml')]);
    expect(stdout).toMatch(/SUCCESS: 4 rules found/);
  });

  it('fire as their unit test says: a stale backup after 36 h, a failed backup, a parked deletion, a worker not scraped', async () => {
    const { stdout, stderr } = await run(bin, ['test', 'rules', 'alerts.test.yaml'], { cwd: RULES_DIR }).catch(
      (err: { stdout?: string; stderr?: string }) => {
        throw new Error(`promtool test rules failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
      },
    );
    expect(`${stdout}${stderr}`).toMatch(/SUCCESS/);
  });
});
