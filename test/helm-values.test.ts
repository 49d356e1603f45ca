import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { runCli } from '../src/cli/main';
import { REDACTED_VALUE, type HelmValuesRecord } from '../src/contracts/helm-values';
import { recordHelmValues, rollbackPlatform } from '../src/workflows';
import { startFakeKubelet, type FakeKubelet } from './helpers/fake-kubelet';
import {
  createNamespace,
  deleteNamespace,
  helm,
  localKube,
  waitForRollout,
  type LocalKube,
} from './helpers/local-kube';
import { captureIo } from './support/cli-io';
import { startTestWorker, type TestWorker } from './support/test-worker';

const run = promisify(execFile);
const CHART = path.join(__dirname, 'fixtures', 'chart');

/** Every file under `dir`, recursively (the backup store's and the git repository's bytes). */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true });
  return entries.filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name));
}

/**
 * The runbook's "Helm values: always, version-controlled (excluding secrets)" on the real API server
 * and helm: a release whose values hold a Secret's value (inside a URL too) and keys that name secrets.
 */
describe('Helm values per revision, secrets redacted', () => {
  let kube: LocalKube;
  let env: TestWorker;
  let namespace: string;
  let kubelet: FakeKubelet;
  let dir: string;
  const release = 'values';
  // Random, so finding it anywhere can only mean it leaked.
  const secret = `s3cr3t-${randomBytes(12).toString('hex')}`;
  const adminPassword = `admin-${randomBytes(12).toString('hex')}`;

  beforeAll(async () => {
    kube = localKube();
    namespace = await createNamespace(kube, 'helmvals');
    kubelet = startFakeKubelet({ kubeConfig: kube.kubeConfig, namespace });
    dir = await mkdtemp(path.join(tmpdir(), 'helm-values-'));
    await kube.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'db' }, stringData: { password: secret } },
    });
    const values = (img: string) => [
      '--set',
      `image=registry.local/eloquent/web:${img}`,
      '--set',
      `database.url=postgres://app:${secret}@db:5432/app`,
      '--set',
      `database.password=${secret}`,
      '--set',
      `admin.initialPassword=${adminPassword}`,
    ];
    await helm(kube, ['install', release, CHART, '--namespace', namespace, ...values('v1')]);
    await waitForRollout(kube, namespace, `${release}-web`);
    await helm(kube, ['upgrade', release, CHART, '--namespace', namespace, ...values('v2'), '--set', 'replicas=2']);
    await waitForRollout(kube, namespace, `${release}-web`);
    env = await startTestWorker('helm-values', {
      KUBECONFIG: kube.kubeconfigPath,
      HELM_BIN: kube.helmBin,
      K8S_NAMESPACE: namespace,
      HELM_RELEASE: release,
      BACKUP_STORE: 'filesystem',
      BACKUP_DIR: path.join(dir, 'store'),
      HELM_VALUES_GIT_DIR: path.join(dir, 'git'),
    });
  }, 180_000);

  afterAll(async () => {
    await env?.shutdown();
    await kubelet?.stop();
    if (namespace) await deleteNamespace(kube, namespace);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stores and commits two revisions, diffs them, keeps the rollback revision, and no stored byte or commit holds a secret', async () => {
    const recorded = await env.client.workflow.execute(recordHelmValues, {
      taskQueue: env.taskQueue,
      workflowId: `helm-values-record-${namespace}`,
      args: [{}],
    });
    expect(recorded).toMatchObject({ release, namespace, stored: [1, 2], committed: [1, 2], revisions: [1, 2] });

    const revision2 = JSON.parse(
      await readFile(path.join(dir, 'store', '_helm', `${namespace}.${release}`, 'revision-2.json'), 'utf8'),
    ) as HelmValuesRecord;
    expect(revision2.values).toMatchObject({
      image: 'registry.local/eloquent/web:v2',
      replicas: 2,
      database: { url: `postgres://app:${REDACTED_VALUE}@db:5432/app`, password: REDACTED_VALUE },
      admin: { initialPassword: REDACTED_VALUE },
    });
    expect(revision2.redacted).toEqual(
      expect.arrayContaining([
        { path: 'database.url', reason: 'secret' },
        { path: 'database.password', reason: 'key' },
        { path: 'admin.initialPassword', reason: 'key' },
      ]),
    );

    const io = captureIo();
    expect(await runCli(['helm-values', 'diff', '1', '2', '--task-queue', env.taskQueue], io)).toBe(0);
    expect(io.out).toContain('~ image: "registry.local/eloquent/web:v1" → "registry.local/eloquent/web:v2"');
    expect(io.out).toContain('~ replicas: 1 → 2');
    expect(io.out).not.toContain('database');

    const report = await env.client.workflow.execute(rollbackPlatform, {
      taskQueue: env.taskQueue,
      workflowId: `rollback-platform-${namespace}`,
      args: [{ release, namespace, revision: 1 }],
    });
    expect(report.newRevision).toBe(3);
    expect(report.helmValues).toMatchObject({ stored: [3], committed: [3], revisions: [1, 2, 3] });

    const gitDir = path.join(dir, 'git');
    const { stdout: log } = await run('git', ['log', '-p', '--all', '--format=%H %s'], { cwd: gitDir });
    expect(log.match(/^[0-9a-f]{40} helm /gm)).toHaveLength(3);
    expect(log).toContain('"image": "registry.local/eloquent/web:v1"');
    // Every byte kept: the store's files, the work tree, and git's objects unpacked by `git log -p` above.
    for (const needle of [secret, adminPassword]) {
      expect(log).not.toContain(needle);
      for (const file of await filesUnder(dir)) expect((await readFile(file)).includes(needle)).toBe(false);
    }
  }, 240_000);

  it('diff of a revision never kept is refused, naming it', async () => {
    const io = captureIo();
    expect(await runCli(['helm-values', 'diff', '1', '9', '--task-queue', env.taskQueue], io)).not.toBe(0);
    expect(io.err).toContain(`no values are stored for revision 9 of helm release ${namespace}/${release}`);
  });
});
