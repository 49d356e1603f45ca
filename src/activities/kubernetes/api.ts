import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { messageOf } from '../../errors';
import type { HelmValuesDeps } from './helm-values';

/** What the Kubernetes activities are made from; built once in the worker. */
export interface KubernetesActivityDeps {
  /**
   * The credentials, or a function that loads them on first use: a worker on a machine without a
   * cluster still starts, and only the Kubernetes activities fail, naming the missing kubeconfig.
   */
  kubeConfig: KubeConfig | (() => KubeConfig);
  /** The `helm` executable (a path, or a name on PATH). */
  helmBin: string;
  /** Passed to helm as --kubeconfig; undefined in a pod, where helm uses the service account. */
  kubeconfigPath: string | undefined;
  /** Used when an input names no namespace. @default "eloquent" */
  namespace?: string;
  /** Used when an input names no Helm release. @default "eloquent" */
  helmRelease?: string;
  /** How often waits poll the API server, in milliseconds. @default 1000 */
  pollIntervalMs?: number;
  /** Where Helm values are kept per revision (helm-values.ts); without it recording them fails, naming why. */
  helmValues?: HelmValuesDeps;
}

/**
 * The client credentials: the pod's service account when running in a cluster, the kubeconfig
 * file otherwise. Reading a missing or malformed kubeconfig throws at worker start.
 */
export function loadKubeConfig(options: { kubeconfigPath: string; inCluster: boolean }): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (options.inCluster) {
    kubeConfig.loadFromCluster();
    return kubeConfig;
  }
  try {
    kubeConfig.loadFromFile(options.kubeconfigPath);
  } catch (err) {
    throw new Error(
      `cannot read the kubeconfig ${options.kubeconfigPath} (KUBECONFIG; the local one is written by scripts/kube-stack.sh up): ${messageOf(err)}`,
      { cause: err },
    );
  }
  return kubeConfig;
}

/** A namespaced resource of an API group (not the core group, which lives under /api). */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  namespace: string;
}

export type JsonPatchOperation =
  { op: 'add' | 'replace' | 'test'; path: string; value: unknown } | { op: 'remove'; path: string };

/**
 * Raw JSON access to namespaced resources. Deliberately untyped: the generated models drop fields
 * they do not know, and a rollback must put back a pod template exactly as the server stored it.
 * Callers parse what they read with zod.
 */
export class RawResources {
  private client: CustomObjectsApi | undefined;

  constructor(private readonly kubeConfig: KubeConfig | (() => KubeConfig)) {}

  private get api(): CustomObjectsApi {
    if (!this.client) {
      const config = typeof this.kubeConfig === 'function' ? this.kubeConfig() : this.kubeConfig;
      this.client = config.makeApiClient(CustomObjectsApi);
    }
    return this.client;
  }

  async get(ref: ResourceRef, name: string): Promise<unknown> {
    return (await this.api.getNamespacedCustomObject({ ...ref, name })) as unknown;
  }

  async list(ref: ResourceRef, labelSelector?: string): Promise<unknown[]> {
    const list = (await this.api.listNamespacedCustomObject({ ...ref, labelSelector })) as { items?: unknown[] };
    return list.items ?? [];
  }

  async create(ref: ResourceRef, body: object): Promise<unknown> {
    return (await this.api.createNamespacedCustomObject({ ...ref, body })) as unknown;
  }

  async jsonPatch(ref: ResourceRef, name: string, operations: JsonPatchOperation[]): Promise<unknown> {
    return (await this.api.patchNamespacedCustomObject(
      { ...ref, name, body: operations },
      setHeaderOptions('Content-Type', PatchStrategy.JsonPatch),
    )) as unknown;
  }
}
