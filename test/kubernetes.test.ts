import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { backupNameFor, type VeleroBackupResult } from '../src/contracts/kubernetes';
import { backupKubernetes, rollbackDeployment, rollbackPlatform } from './helpers/kubernetes-workflows';
import { startFakeKubelet, type FakeKubelet } from './helpers/fake-kubelet';
import {
  createNamespace,
  deleteNamespace,
  helm,
  imagesOf,
  localKube,
  startKubernetesWorker,
  waitForRollout,
  type KubernetesTestWorker,
  type LocalKube,
} from './helpers/local-kube';

const CHART = path.join(__dirname, 'fixtures', 'chart');
const image = (service: string, tag: string) => `registry.local/eloquent/${service}:${tag}`;

let kube: LocalKube;
let env: KubernetesTestWorker;
let namespace: string;
let kubelet: FakeKubelet;

beforeAll(async () => {
  kube = localKube();
  namespace = await createNamespace(kube, 'k8s');
  // Pods of ":broken" images never become Ready: their rollouts pass the progress deadline.
  kubelet = startFakeKubelet({ kubeConfig: kube.kubeConfig, namespace, isBroken: (img) => img.endsWith(':broken') });
  env = await startKubernetesWorker(kube);
});

afterAll(async () => {
  await env?.shutdown();
  await kubelet?.stop();
  if (namespace) await deleteNamespace(kube, namespace);
});

async function createDeployment(name: string, img: string, progressDeadlineSeconds = 30): Promise<void> {
  const labels = { app: name };
  await kube.apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name, annotations: { 'kubernetes.io/change-cause': `deploy ${img}` } },
      spec: {
        replicas: 2,
        progressDeadlineSeconds,
        selector: { matchLabels: labels },
        template: { metadata: { labels }, spec: { containers: [{ name, image: img }] } },
      },
    },
  });
}

/** What `kubectl set image` plus `--record` does: a new template, hence a new revision. */
async function setImage(name: string, img: string): Promise<void> {
  await kube.apps.patchNamespacedDeployment({
    name,
    namespace,
    body: [
      { op: 'replace', path: '/spec/template/spec/containers/0/image', value: img },
      { op: 'add', path: '/metadata/annotations/kubernetes.io~1change-cause', value: `set image ${img}` },
    ],
  });
}

/** The run's failure message (the activity's or the workflow's own), failing the test if it succeeded. */
async function failureOf(run: Promise<unknown>): Promise<string> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  return (err as WorkflowFailedError).cause?.message ?? '';
}

const workflowId = (what: string) => `${what}-${namespace}-${randomUUID().slice(0, 6)}`;

describe('rollbackDeployment', () => {
  it('rolls a Deployment updated v1 → v2 → v3 back to v2 with no revision given, then to v1 with toRevision 1', async () => {
    await createDeployment('api', image('api', 'v1'));
    await waitForRollout(kube, namespace, 'api');
    for (const tag of ['v2', 'v3']) {
      await setImage('api', image('api', tag));
      await waitForRollout(kube, namespace, 'api');
    }

    const toPrevious = await env.client.workflow.execute(rollbackDeployment, {
      taskQueue: env.taskQueue,
      workflowId: workflowId('rollback-deployment'),
      args: [{ service: 'api', namespace }],
    });
    expect(toPrevious).toEqual({
      namespace,
      service: 'api',
      fromRevision: 3,
      fromImages: [`api=${image('api', 'v3')}`],
      toRevision: 2,
      toImages: [`api=${image('api', 'v2')}`],
      revisionAfter: 4,
      changed: true,
    });
    expect(await imagesOf(kube, namespace, 'api')).toEqual([image('api', 'v2')]);
    const deployment = await kube.apps.readNamespacedDeployment({ name: 'api', namespace });
    expect(deployment.spec?.template.metadata?.labels).toEqual({ app: 'api' }); // no pod-template-hash
    expect(deployment.status?.availableReplicas).toBe(2);

    const toFirst = await env.client.workflow.execute(rollbackDeployment, {
      taskQueue: env.taskQueue,
      workflowId: workflowId('rollback-deployment'),
      args: [{ service: 'api', namespace, toRevision: 1 }],
    });
    expect(toFirst).toMatchObject({
      fromRevision: 4,
      toRevision: 1,
      toImages: [`api=${image('api', 'v1')}`],
      revisionAfter: 5,
    });
    expect(await imagesOf(kube, namespace, 'api')).toEqual([image('api', 'v1')]);
  });

  it('reports in deploymentHistory exactly the revisions the controller recorded on the ReplicaSets', async () => {
    const history = await env.activities.deploymentHistory({ service: 'api', namespace });
    const replicaSets = await kube.apps.listNamespacedReplicaSet({ namespace, labelSelector: 'app=api' });
    const recorded = replicaSets.items
      .map((rs) => ({
        revision: Number(rs.metadata?.annotations?.['deployment.kubernetes.io/revision']),
        replicaSet: rs.metadata?.name,
        images: rs.spec?.template?.spec?.containers.map((c) => `${c.name}=${c.image ?? ''}`),
        changeCause: rs.metadata?.annotations?.['kubernetes.io/change-cause'],
      }))
      .sort((a, b) => a.revision - b.revision);
    expect(history.currentRevision).toBe(5);
    expect(
      history.revisions.map(({ revision, replicaSet, images, changeCause }) => ({
        revision,
        replicaSet,
        images,
        changeCause,
      })),
    ).toEqual(recorded);
    // Rolling back renumbers the restored template: v1 is now 5, v3 stays 3, v2 became 4.
    expect(history.revisions.map((r) => [r.revision, r.images[0]])).toEqual([
      [3, `api=${image('api', 'v3')}`],
      [4, `api=${image('api', 'v2')}`],
      [5, `api=${image('api', 'v1')}`],
    ]);
    expect(history.revisions.find((r) => r.revision === 5)?.readyReplicas).toBe(2);
  });

  it('refuses an unknown revision and an unknown Deployment, naming them, and leaves the Deployment unchanged', async () => {
    const before = await kube.apps.readNamespacedDeployment({ name: 'api', namespace });
    const unknownRevision = await failureOf(
      env.client.workflow.execute(rollbackDeployment, {
        taskQueue: env.taskQueue,
        workflowId: workflowId('rollback-deployment'),
        args: [{ service: 'api', namespace, toRevision: 99 }],
      }),
    );
    expect(unknownRevision).toContain(`deployment ${namespace}/api has no revision 99 (revisions: 3, 4, 5)`);
    const after = await kube.apps.readNamespacedDeployment({ name: 'api', namespace });
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);

    const unknownDeployment = await failureOf(
      env.client.workflow.execute(rollbackDeployment, {
        taskQueue: env.taskQueue,
        workflowId: workflowId('rollback-deployment'),
        args: [{ service: 'no-such-service', namespace }],
      }),
    );
    expect(unknownDeployment).toContain(`deployment ${namespace}/no-such-service does not exist`);
  });

  it('refuses invalid input with a message naming each bad field', async () => {
    const message = await failureOf(
      env.client.workflow.execute(rollbackDeployment, {
        taskQueue: env.taskQueue,
        workflowId: workflowId('rollback-deployment'),
        args: [{ service: 'API_v2', namespace, toRevision: 0 }],
      }),
    );
    expect(message).toMatch(/service must be a Kubernetes name .* got "API_v2"/);
    expect(message).toMatch(/toRevision must be a positive whole number, got 0/);
  });

  it('rolls forward to where it started when the rolled-back rollout passes its progress deadline', async () => {
    // Revision 1 never became ready; revision 2 is the healthy one the rollback starts from.
    await createDeployment('worker', image('worker', 'broken'), 3);
    await setImage('worker', image('worker', 'v2'));
    await waitForRollout(kube, namespace, 'worker');

    const message = await failureOf(
      env.client.workflow.execute(rollbackDeployment, {
        taskQueue: env.taskQueue,
        workflowId: workflowId('rollback-deployment'),
        args: [{ service: 'worker', namespace }],
      }),
    );
    expect(message).toContain(
      `deployment ${namespace}/worker] rollback to revision 1 (worker=${image('worker', 'broken')}) failed`,
    );
    expect(message).toMatch(/timed out progressing/);
    expect(message).toContain(`rolled forward again to the template of revision 2 (worker=${image('worker', 'v2')})`);
    expect(await imagesOf(kube, namespace, 'worker')).toEqual([image('worker', 'v2')]);
    const deployment = await waitForRollout(kube, namespace, 'worker');
    expect(deployment.status?.availableReplicas).toBe(2);
  });

  it('leaves the failed template in place when rollForwardOnFailure is false', async () => {
    const message = await failureOf(
      env.client.workflow.execute(rollbackDeployment, {
        taskQueue: env.taskQueue,
        workflowId: workflowId('rollback-deployment'),
        // The rolled-forward template is now revision 4 and the broken one revision 3, the previous.
        args: [{ service: 'worker', namespace, rollForwardOnFailure: false }],
      }),
    );
    expect(message).toMatch(
      /rollback to revision 3 \(worker=\S+:broken\) failed: .*timed out progressing.*rollForwardOnFailure is off/,
    );
    expect(await imagesOf(kube, namespace, 'worker')).toEqual([image('worker', 'broken')]);
  });
});

describe('rollbackPlatform', () => {
  const release = 'platform';
  const helmHistory = async () =>
    JSON.parse(await helm(kube, ['history', release, '--namespace', namespace, '--output', 'json'])) as Array<{
      revision: number;
      description: string;
    }>;

  beforeAll(async () => {
    await helm(kube, ['install', release, CHART, '--namespace', namespace, '--set', `image=${image('web', 'v1')}`]);
    await waitForRollout(kube, namespace, `${release}-web`);
    await helm(kube, ['upgrade', release, CHART, '--namespace', namespace, '--set', `image=${image('web', 'v2')}`]);
    await waitForRollout(kube, namespace, `${release}-web`);
  });

  it('rolls a release installed and upgraded with helm back to revision 1, and helm history shows the rollback', async () => {
    const report = await env.client.workflow.execute(rollbackPlatform, {
      taskQueue: env.taskQueue,
      workflowId: workflowId('rollback-platform'),
      args: [{ release, namespace, revision: 1 }],
    });
    expect(report).toMatchObject({ release, namespace, fromRevision: 2, toRevision: 1, newRevision: 3 });
    expect(report.historyBefore.map((r) => r.revision)).toEqual([1, 2]);
    expect(report.historyAfter.at(-1)).toMatchObject({ revision: 3, status: 'deployed', description: 'Rollback to 1' });
    expect(report.deployments).toEqual([
      expect.objectContaining({
        service: `${release}-web`,
        outcome: 'complete',
        images: [`web=${image('web', 'v1')}`],
        availableReplicas: 1,
      }),
    ]);
    expect(await imagesOf(kube, namespace, `${release}-web`)).toEqual([image('web', 'v1')]);
    expect((await helmHistory()).at(-1)).toMatchObject({ revision: 3, description: 'Rollback to 1' });
  });

  it('refuses an unknown revision and an unknown release with nothing changed', async () => {
    const unknownRevision = await failureOf(
      env.client.workflow.execute(rollbackPlatform, {
        taskQueue: env.taskQueue,
        workflowId: workflowId('rollback-platform'),
        args: [{ release, namespace, revision: 9 }],
      }),
    );
    expect(unknownRevision).toContain(`helm release ${namespace}/${release} has no revision 9 (revisions: 1, 2, 3)`);
    expect((await helmHistory()).map((r) => r.revision)).toEqual([1, 2, 3]);

    const unknownRelease = await failureOf(
      env.client.workflow.execute(rollbackPlatform, {
        taskQueue: env.taskQueue,
        workflowId: workflowId('rollback-platform'),
        args: [{ release: 'no-such-release', namespace }],
      }),
    );
    expect(unknownRelease).toContain(`helm release ${namespace}/no-such-release does not exist`);
  });
});

describe('backupKubernetes', () => {
  const backups = { group: 'velero.io', version: 'v1', namespace: 'velero', plural: 'backups' };
  const created: string[] = [];

  afterAll(async () => {
    for (const name of created)
      await kube.custom.deleteNamespacedCustomObject({ ...backups, name }).catch(() => undefined);
  });

  async function waitForBackupObject(name: string): Promise<{ spec: { includedNamespaces: string[]; ttl: string } }> {
    for (let i = 0; i < 100; i++) {
      try {
        return (await kube.custom.getNamespacedCustomObject({ ...backups, name })) as {
          spec: { includedNamespaces: string[]; ttl: string };
        };
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    throw new Error(`Backup velero/${name} was never created`);
  }

  /** Plays the Velero server: moves the Backup through InProgress to its final status. */
  async function finishBackup(name: string, status: Record<string, unknown>): Promise<void> {
    const patch = (body: object) =>
      kube.custom.patchNamespacedCustomObject(
        { ...backups, name, body },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    await patch({ status: { phase: 'InProgress', progress: { itemsBackedUp: 3, totalItems: 10 } } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    await patch({ status });
  }

  async function startBackup(
    input: Parameters<typeof backupKubernetes>[0],
    id = workflowId('backup-kubernetes'),
  ): Promise<WorkflowHandle<typeof backupKubernetes>> {
    return env.client.workflow.start(backupKubernetes, { taskQueue: env.taskQueue, workflowId: id, args: [input] });
  }

  it('creates a Backup with the requested namespaces and TTL and reports its Completed phase', async () => {
    const id = workflowId('backup-kubernetes');
    const name = backupNameFor(id);
    created.push(name);
    const handle = await startBackup({ includedNamespaces: [namespace], ttl: '72h' }, id);
    const backup = await waitForBackupObject(name);
    expect(backup.spec).toMatchObject({ includedNamespaces: [namespace], ttl: '72h' });
    await finishBackup(name, { phase: 'Completed', errors: 0, warnings: 0, expiration: '2030-01-01T00:00:00Z' });
    const result: VeleroBackupResult = await handle.result();
    expect(result).toEqual({
      name,
      namespace: 'velero',
      phase: 'Completed',
      includedNamespaces: [namespace],
      ttl: '72h',
      errors: 0,
      warnings: 0,
      validationErrors: [],
      expiration: '2030-01-01T00:00:00Z',
      // The weekly backup also keeps the platform's Helm values; this test worker has no store for
      // them, and says so in the report rather than failing the Velero backup.
      helmValues: { error: expect.stringMatching(/keeps no Helm values/) },
    });
  });

  it('reports PartiallyFailed with its warning and error counts', async () => {
    const name = `t-partial-${randomUUID().slice(0, 8)}`;
    created.push(name);
    const handle = await startBackup({ includedNamespaces: [namespace, 'eloquent'], ttl: '720h', name });
    await waitForBackupObject(name);
    await finishBackup(name, { phase: 'PartiallyFailed', errors: 1, warnings: 3 });
    expect(await handle.result()).toMatchObject({
      name,
      phase: 'PartiallyFailed',
      errors: 1,
      warnings: 3,
      includedNamespaces: [namespace, 'eloquent'],
    });
  });

  it("fails with Velero's reason when the backup ends Failed", async () => {
    const name = `t-failed-${randomUUID().slice(0, 8)}`;
    created.push(name);
    const handle = await startBackup({ includedNamespaces: [namespace], name });
    await waitForBackupObject(name);
    await finishBackup(name, {
      phase: 'Failed',
      errors: 2,
      warnings: 0,
      failureReason: 'backup storage location default is unavailable',
    });
    const message = await failureOf(handle.result());
    expect(message).toContain(
      `backup velero/${name}] Velero backup ended Failed: backup storage location default is unavailable (errors: 2, warnings: 0)`,
    );
  });

  it('refuses a malformed ttl and namespace list, naming the fields', async () => {
    const message = await failureOf(startBackup({ includedNamespaces: [], ttl: '30 days' }).then((h) => h.result()));
    expect(message).toMatch(/includedNamespaces must be a non-empty list/);
    expect(message).toMatch(/ttl must be a duration such as "720h"/);
  });
});
