import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { REDACTED_VALUE, type HelmValuesRecord } from '../src/contracts/helm-values';
import {
  commitHelmValues,
  diffHelmValues,
  readHelmValuesRecord,
  redactHelmValues,
  storeHelmValuesRecord,
} from '../src/activities/kubernetes/helm-values';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { loadConfig } from '../src/config';

const run = promisify(execFile);
const KEYS = loadConfig({ ...process.env }).kubernetes.helmValuesRedactKeys;
const SECRET = 'Zx9-very-secret-4711';

const record = (revision: number, values: unknown): HelmValuesRecord => ({
  release: 'eloquent',
  namespace: 'eloquent',
  revision,
  chart: 'eloquent-1.0.0',
  status: 'deployed',
  updated: '2026-12-01T12:00:00Z',
  description: revision === 1 ? 'Install complete' : 'Upgrade complete',
  values,
  redacted: [],
});

describe('Helm values redaction', () => {
  it('redacts keys matching the pattern, values equal to a Secret, and Secrets inside longer strings; keeps the rest', () => {
    const { values, redacted } = redactHelmValues(
      {
        image: { tag: 'v2' },
        postgresql: { auth: { username: 'app', password: 'pw' }, url: `postgres://app:${SECRET}@db/app` },
        smtp: { user: 'mailer', pass: SECRET },
        tls: { enabled: true },
        ports: [8080, SECRET],
        apiKey: '',
      },
      KEYS,
      [SECRET],
    );
    expect(values).toEqual({
      image: { tag: 'v2' },
      postgresql: { auth: REDACTED_VALUE, url: `postgres://app:${REDACTED_VALUE}@db/app` },
      smtp: { user: 'mailer', pass: REDACTED_VALUE },
      tls: { enabled: true },
      ports: [8080, REDACTED_VALUE],
      apiKey: '',
    });
    expect(redacted).toEqual(
      expect.arrayContaining([
        { path: 'postgresql.auth', reason: 'key' },
        { path: 'postgresql.url', reason: 'secret' },
        { path: 'smtp.pass', reason: 'secret' },
        { path: 'ports[1]', reason: 'secret' },
      ]),
    );
    expect(JSON.stringify(values)).not.toContain(SECRET);
  });

  it('a HELM_VALUES_REDACT_KEYS that is no regular expression stops start-up, naming the variable', () => {
    expect(() => loadConfig({ HELM_VALUES_REDACT_KEYS: 'pass(word' })).toThrow(
      /HELM_VALUES_REDACT_KEYS.*expected a regular expression/,
    );
  });

  it('a diff lists changed, added and removed leaves by path', () => {
    expect(
      diffHelmValues(
        { image: { tag: 'v1' }, replicas: 1, old: true, list: [1, 2] },
        { image: { tag: 'v2' }, replicas: 1, added: 'x', list: [1, 3] },
      ),
    ).toEqual([
      { path: 'added', change: 'added', to: '"x"' },
      { path: 'image.tag', change: 'changed', from: '"v1"', to: '"v2"' },
      { path: 'list[1]', change: 'changed', from: '2', to: '3' },
      { path: 'old', change: 'removed', from: 'true' },
    ]);
  });

  it('commits one revision per commit to a real git repository, once, with no secret in any commit or file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'helm-values-git-'));
    try {
      const redact = (v: unknown) => redactHelmValues(v, KEYS, [SECRET]).values;
      const first = record(1, redact({ image: 'v1', db: { password: SECRET } }));
      const second = record(2, redact({ image: 'v2', db: { password: SECRET }, url: `x://u:${SECRET}@h` }));
      expect(await commitHelmValues(dir, [second, first])).toEqual([1, 2]);
      // Idempotent: a retry commits nothing new.
      expect(await commitHelmValues(dir, [first, second])).toEqual([]);
      const { stdout: log } = await run('git', ['log', '-p', '--all', '--format=%s'], { cwd: dir });
      expect(log.split('\n').filter((l) => l.startsWith('helm '))).toEqual([
        'helm eloquent/eloquent revision 2 (eloquent-1.0.0, deployed): Upgrade complete',
        'helm eloquent/eloquent revision 1 (eloquent-1.0.0, deployed): Install complete',
      ]);
      expect(log).toContain('-  "image": "v1"');
      expect(log).toContain('+  "image": "v2"');
      expect(log).not.toContain(SECRET);
      const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      for (const f of files) expect((await readFile(path.join(f.parentPath, f.name))).includes(SECRET)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stores each revision once in the backup store, readable back, with no secret in any stored byte', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'helm-values-store-'));
    try {
      const store = createFilesystemBackupStore({ directory: dir, masterKeyBase64: undefined });
      const values = redactHelmValues({ image: 'v1', db: { url: `pg://u:${SECRET}@h/db` } }, KEYS, [SECRET]).values;
      expect(await storeHelmValuesRecord(store, record(1, values))).toBe(true);
      // A revision's values never change: a second store keeps the first record.
      expect(await storeHelmValuesRecord(store, record(1, { image: 'other' }))).toBe(false);
      expect((await readHelmValuesRecord(store, 'eloquent', 'eloquent', 1))?.values).toEqual(values);
      expect(await readHelmValuesRecord(store, 'eloquent', 'eloquent', 2)).toBeUndefined();
      const files = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) expect((await readFile(path.join(f.parentPath, f.name))).includes(SECRET)).toBe(false);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
