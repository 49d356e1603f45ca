import { CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { KubernetesFailureType } from '../../contracts/kubernetes';
import { describeContext, FailureType, isTransientNetworkError, messageOf } from '../../errors';

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
      `cannot read the kubeconfig ${options.kubeconfigPath} (KUBECONFIG_PATH; the local one is written by scripts/kube-stack.sh up): ${messageOf(err)}`,
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
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string };

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

/** The HTTP status of an API error, or undefined for other errors (network, parsing, …). */
export function httpStatusOf(err: unknown): number | undefined {
  // Structural, not instanceof: under Jest the client library lives in another realm.
  if (typeof err !== 'object' || err === null) return undefined;
  const { code, headers } = err as { code?: unknown; headers?: unknown };
  return typeof code === 'number' && typeof headers === 'object' ? code : undefined;
}

/** The API server's own explanation (the Status object's message) of an API error. */
export function statusMessageOf(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.trim() || messageOf(err);
    }
  }
  const message = (parsed as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : `HTTP ${httpStatusOf(err) ?? '?'}`;
}

/**
 * True when retrying may help: the API server unreachable or restarting, overloaded (429),
 * failing (5xx) or a write conflict (409). Not found, forbidden and invalid requests are final.
 */
export function isRetryableKubernetesError(err: unknown): boolean {
  const status = httpStatusOf(err);
  if (status === undefined) return isTransientNetworkError(err);
  return status === 409 || status === 429 || status >= 500;
}

/**
 * Turns an error of the API server into a failure that names the object: non-retryable for
 * 404 (as `UnknownKubernetesObject`), 401/403 and invalid requests; retryable otherwise.
 */
export function kubernetesFailure(err: unknown, object: string, notFound?: string): ApplicationFailure {
  const prefix = describeContext({ store: 'kubernetes', object });
  const status = httpStatusOf(err);
  if (status === 404) {
    return ApplicationFailure.create({
      type: KubernetesFailureType.UnknownObject,
      message: `${prefix} ${notFound ?? `${object} does not exist`}: ${statusMessageOf(err)}`,
      nonRetryable: true,
    });
  }
  if (status === undefined) {
    return ApplicationFailure.create({
      type: FailureType.StoreUnavailable,
      message: `${prefix} the Kubernetes API server did not answer: ${messageOf(err)}`,
      nonRetryable: false,
    });
  }
  return ApplicationFailure.create({
    type: isRetryableKubernetesError(err) ? FailureType.StoreUnavailable : FailureType.StoreRejected,
    message: `${prefix} the API server answered ${status}: ${statusMessageOf(err)}`,
    nonRetryable: !isRetryableKubernetesError(err),
  });
}

/** A permanent failure of a Kubernetes operation, naming the object. */
export function kubernetesRefusal(type: string, object: string, message: string): ApplicationFailure {
  return ApplicationFailure.create({ type, message: `${describeContext({ store: 'kubernetes', object })} ${message}`, nonRetryable: true });
}

/** Runs one API call and classifies what it throws; `notFound` explains a 404. */
export async function callApi<T>(object: string, call: () => Promise<T>, notFound?: string): Promise<T> {
  try {
    return await call();
  } catch (err) {
    throw kubernetesFailure(err, object, notFound);
  }
}
