import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, type V1Deployment } from '@kubernetes/client-node';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, NativeConnection, Worker } from '@temporalio/worker';
import { createKubernetesActivities, type KubernetesActivities } from '../../src/activities/kubernetes';
import { rolloutStateOf } from '../../src/activities/kubernetes/deployments';
import { loadConfig } from '../../src/config';
import { ERRORS_ONLY_BUNDLE_LOGGER } from '../support/bundle-logger';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);

/** The control plane of `scripts/kube-stack.sh` (which must be up) and the helm it built. */
export interface LocalKube {
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
  helmBin: string;
  apps: AppsV1Api;
  core: CoreV1Api;
  custom: CustomObjectsApi;
}

export function localKube(): LocalKube {
  const env = Object.fromEntries(
    execFileSync('bash', [path.join(REPO_ROOT, 'scripts', 'kube-stack.sh'), 'env'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
  ) as Record<string, string>;
  const kubeconfigPath = env.KUBECONFIG ?? '';
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(kubeconfigPath);
  return {
    kubeConfig,
    kubeconfigPath,
    helmBin: env.HELM_BIN ?? 'helm',
    apps: kubeConfig.makeApiClient(AppsV1Api),
    core: kubeConfig.makeApiClient(CoreV1Api),
    custom: kubeConfig.makeApiClient(CustomObjectsApi),
  };
}

/** A namespace of its own for one test file, e.g. `t-deploy-1a2b3c4d`. */
export async function createNamespace(kube: LocalKube, prefix: string): Promise<string> {
  const name = `t-${prefix}-${randomUUID().slice(0, 8)}`;
  await kube.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

export async function deleteNamespace(kube: LocalKube, name: string): Promise<void> {
  await kube.core.deleteNamespace({ name }).catch(() => undefined);
}

/** Runs the real helm against the local API server. */
export async function helm(kube: LocalKube, args: string[]): Promise<string> {
  const { stdout } = await run(kube.helmBin, [...args, '--kubeconfig', kube.kubeconfigPath]);
  return stdout;
}

/** Polls until the Deployment's rollout completed (fails the test on a failed rollout or time-out). */
export async function waitForRollout(
  kube: LocalKube,
  namespace: string,
  name: string,
  timeoutMs = 60_000,
): Promise<V1Deployment> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const raw = await kube.custom.getNamespacedCustomObject({
      group: 'apps',
      version: 'v1',
      plural: 'deployments',
      namespace,
      name,
    });
    const state = rolloutStateOf(raw);
    if (state.state === 'complete') return kube.apps.readNamespacedDeployment({ name, namespace });
    if (state.state === 'failed' || Date.now() > deadline) {
      throw new Error(`deployment ${namespace}/${name} did not roll out: ${state.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The image of every container of the Deployment's pod template. */
export async function imagesOf(kube: LocalKube, namespace: string, name: string): Promise<string[]> {
  const deployment = await kube.apps.readNamespacedDeployment({ name, namespace });
  return (deployment.spec?.template.spec?.containers ?? []).map((c) => c.image ?? '');
}

export interface KubernetesTestWorker {
  client: Client;
  taskQueue: string;
  activities: KubernetesActivities;
  shutdown(): Promise<void>;
}

/**
 * A worker on the dev server with the Kubernetes activities only, on a task queue of its own.
 * Bundles the three Kubernetes workflows (test/helpers/kubernetes-workflows.ts).
 */
export async function startKubernetesWorker(kube: LocalKube): Promise<KubernetesTestWorker> {
  const config = loadConfig();
  const activities = createKubernetesActivities({
    kubeConfig: kube.kubeConfig,
    kubeconfigPath: kube.kubeconfigPath,
    helmBin: kube.helmBin,
    pollIntervalMs: 250,
  });
  const { code } = await bundleWorkflowCode({
    workflowsPath: path.join(__dirname, 'kubernetes-workflows.ts'),
    logger: ERRORS_ONLY_BUNDLE_LOGGER,
  });
  const nativeConnection = await NativeConnection.connect({ address: config.temporal.address });
  const taskQueue = `test-kubernetes-${randomUUID().slice(0, 8)}`;
  const worker = await Worker.create({
    connection: nativeConnection,
    namespace: config.temporal.namespace,
    taskQueue,
    workflowBundle: { code },
    activities,
  });
  const running = worker.run();
  const connection = await Connection.connect({ address: config.temporal.address });
  const client = new Client({ connection, namespace: config.temporal.namespace });
  return {
    client,
    taskQueue,
    activities,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
      await nativeConnection.close();
    },
  };
}
