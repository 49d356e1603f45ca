import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { readBlob } from '../src/storage/blob-store';
import { freePort } from './support/free-port';
import { localS3Blobs } from './support/local-s3';
import { REPO_ROOT } from './support/paths';

const run = promisify(execFile);

/**
 * `scripts/stack.sh up s3` on an empty tools cache and state directory, with the real Go toolchain:
 * it builds gofakes3 from tools/gofakes3 into the cache, serves the bucket on the port of
 * S3_ENDPOINT, is idempotent, and `down s3` stops the server it started. A stack of its own, on a
 * free port, so the shared one is never touched.
 */
describe('the S3-compatible test server', () => {
  test('stack.sh up s3 builds gofakes3 v1.2.0 into the tools cache, serves the bucket, and down s3 stops it', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'eloquent-s3-stack-'));
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ELOQUENT_TOOLS_CACHE: path.join(root, 'tools-cache'),
      ELOQUENT_STATE_DIR: path.join(root, 'state'),
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_BUCKET: 'fresh-bucket',
    };
    const stack = (...args: string[]) =>
      run('bash', [path.join(REPO_ROOT, 'scripts', 'stack.sh'), ...args], { env, timeout: 300_000 });
    try {
      const first = await stack('up', 's3');
      expect(first.stderr).toContain('building gofakes3 v1.2.0 from the Go module proxy');
      // stdout is the status table only: progress never reaches what a caller captures.
      expect(first.stdout.trim().split('\n')).toEqual([
        expect.stringMatching(/^SERVICE/),
        expect.stringMatching(new RegExp(`^s3 +127\\.0\\.0\\.1:${port} +gofakes3 v1\\.2\\.0 +up$`)),
      ]);
      expect(existsSync(path.join(root, 'tools-cache', 'gofakes3-v1.2.0', 'gofakes3-server'))).toBe(true);

      const blobs = localS3Blobs({
        S3_ENDPOINT: env.S3_ENDPOINT,
        S3_BUCKET: 'fresh-bucket',
        S3_PREFIX: 'probe/',
        AWS_ACCESS_KEY_ID: 'x',
        AWS_SECRET_ACCESS_KEY: 'x',
      });
      await blobs.put('org_a/b1/manifest.json', '{}', { store: 'storage' });
      expect((await readBlob(blobs, 'org_a/b1/manifest.json'))?.toString()).toBe('{}');

      const second = await stack('up', 's3');
      expect(second.stderr).not.toContain('building');
      expect(second.stderr).not.toContain('starting gofakes3');

      const pid = Number(readFileSync(path.join(root, 'state', 's3', 'server.pid'), 'utf8'));
      await stack('down', 's3');
      expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      await stack('down', 's3').catch(() => undefined);
      rmSync(root, { recursive: true, force: true });
    }
  });
});
