import { heartbeat, sleep } from '@temporalio/activity';
import { z } from 'zod';
import {
  DEFAULT_KUBERNETES_NAMESPACE,
  KubernetesFailureType,
  type DeploymentHistory,
  type DeploymentHistoryInput,
  type DeploymentRevision,
  type DeploymentRollbackPlan,
  type DeploymentRollout,
} from '../../contracts/kubernetes';
import { FailureType } from '../../errors';
import { RawResources, type JsonPatchOperation, type KubernetesActivityDeps, type ResourceRef } from './api';
import { callApi, kubernetesRefusal } from './errors';

const REVISION = 'deployment.kubernetes.io/revision';
const CHANGE_CAUSE = 'kubernetes.io/change-cause';
const POD_TEMPLATE_HASH = 'pod-template-hash';
// Annotations the deployment controller owns; `kubectl rollout undo` keeps the Deployment's
// own values of these and copies every other annotation from the ReplicaSet.
const CONTROLLER_ANNOTATIONS = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION,
  'deployment.kubernetes.io/revision-history',
  'deployment.kubernetes.io/desired-replicas',
  'deployment.kubernetes.io/max-replicas',
  'deprecated.deployment.rollback.to',
]);

const stringMap = z.record(z.string(), z.string());
const podTemplate = z.looseObject({
  metadata: z.looseObject({ labels: stringMap.optional() }).optional(),
  spec: z.looseObject({ containers: z.array(z.looseObject({ name: z.string(), image: z.string().optional() })) }),
});
type PodTemplate = z.infer<typeof podTemplate>;
const metadata = z.looseObject({
  name: z.string(),
  uid: z.string(),
  generation: z.number().optional(),
  creationTimestamp: z.string().optional(),
  annotations: stringMap.optional(),
  ownerReferences: z.array(z.looseObject({ uid: z.string(), controller: z.boolean().optional() })).optional(),
});
const deploymentSchema = z.looseObject({
  metadata,
  spec: z.looseObject({
    replicas: z.number().optional(),
    paused: z.boolean().optional(),
    progressDeadlineSeconds: z.number().optional(),
    template: podTemplate,
  }),
  status: z
    .looseObject({
      observedGeneration: z.number().optional(),
      replicas: z.number().optional(),
      updatedReplicas: z.number().optional(),
      readyReplicas: z.number().optional(),
      availableReplicas: z.number().optional(),
      conditions: z
        .array(z.looseObject({ type: z.string(), reason: z.string().optional(), message: z.string().optional() }))
        .optional(),
    })
    .optional(),
});
type Deployment = z.infer<typeof deploymentSchema>;
const replicaSetSchema = z.looseObject({
  metadata,
  spec: z.looseObject({ template: podTemplate }),
  status: z.looseObject({ readyReplicas: z.number().optional() }).optional(),
});
type ReplicaSet = z.infer<typeof replicaSetSchema>;

const DEPLOYMENTS = { group: 'apps', version: 'v1', plural: 'deployments' } as const;
const REPLICA_SETS = { group: 'apps', version: 'v1', plural: 'replicasets' } as const;

function revisionOf(annotations: Record<string, string> | undefined): number {
  const value = Number(annotations?.[REVISION]);
  return Number.isInteger(value) && value > 0 ? value : 0;
}

function imagesOf(template: PodTemplate): string[] {
  return template.spec.containers.map((c) => `${c.name}=${c.image ?? ''}`);
}

/** The template as the Deployment would carry it: the controller's hash label removed. */
function withoutHashLabel(template: PodTemplate): PodTemplate {
  const copy = structuredClone(template);
  if (copy.metadata?.labels) {
    delete copy.metadata.labels[POD_TEMPLATE_HASH];
  }
  return copy;
}

/** JSON with object keys sorted, so two templates compare equal whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : v,
  );
}

function sameTemplate(a: PodTemplate, b: PodTemplate): boolean {
  return canonical(withoutHashLabel(a)) === canonical(withoutHashLabel(b));
}

/**
 * Where a rollout stands, by the rules of `kubectl rollout status`: done when every replica runs
 * the new template and is available; failed when the controller reports ProgressDeadlineExceeded.
 */
function rolloutState(deployment: Deployment): { state: 'waiting' | 'complete' | 'failed'; message: string } {
  const status = deployment.status ?? {};
  if ((deployment.metadata.generation ?? 0) > (status.observedGeneration ?? 0)) {
    return { state: 'waiting', message: 'waiting for the controller to observe the new template' };
  }
  const progressing = status.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return { state: 'failed', message: progressing.message ?? 'progress deadline exceeded' };
  }
  const wanted = deployment.spec.replicas ?? 1;
  const updated = status.updatedReplicas ?? 0;
  if (updated < wanted) return { state: 'waiting', message: `${updated} of ${wanted} new replicas have been updated` };
  const total = status.replicas ?? 0;
  if (total > updated) return { state: 'waiting', message: `${total - updated} old replicas are pending termination` };
  const available = status.availableReplicas ?? 0;
  if (available < updated)
    return { state: 'waiting', message: `${available} of ${updated} updated replicas are available` };
  return { state: 'complete', message: `${updated} of ${wanted} replicas updated and available` };
}

/** The replica counts whose change the Deployment controller counts as progress, and since when they stand. */
export interface RolloutProgress {
  counts: string;
  sinceMs: number;
}

const KUBERNETES_DEFAULT_PROGRESS_DEADLINE_SECONDS = 600;

/**
 * The controller's progress clock misses one case, so the wait keeps its own. A rollout back to a
 * ReplicaSet that already exists can leave the Progressing condition at NewReplicaSetAvailable
 * from the previous, complete rollout (when the controller's first sync after the change already
 * sees the scaled-up ReplicaSet, no count rises, so the condition is never renewed); the controller
 * never times out a rollout under that reason, and its pods may never become ready. Returns the
 * failure message when such a rollout made no progress for its progressDeadlineSeconds, measured
 * from `progress` (updated in place with what it sees).
 */
export function stalledRolloutMessage(raw: unknown, progress: RolloutProgress, nowMs: number): string | undefined {
  const deployment = deploymentSchema.parse(raw);
  const status = deployment.status ?? {};
  const counts = [status.replicas, status.updatedReplicas, status.readyReplicas, status.availableReplicas]
    .map((n) => n ?? 0)
    .join('/');
  if (counts !== progress.counts) {
    progress.counts = counts;
    progress.sinceMs = nowMs;
    return undefined;
  }
  const progressing = status.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason !== 'NewReplicaSetAvailable' || deployment.spec.paused === true) return undefined;
  const deadlineSeconds = deployment.spec.progressDeadlineSeconds ?? KUBERNETES_DEFAULT_PROGRESS_DEADLINE_SECONDS;
  const stalledSeconds = Math.floor((nowMs - progress.sinceMs) / 1000);
  if (stalledSeconds < deadlineSeconds) return undefined;
  return (
    `revision ${revisionOf(deployment.metadata.annotations)} has timed out progressing: ` +
    `replicas/updated/ready/available stayed ${counts} for ${stalledSeconds} s (progressDeadlineSeconds ${deadlineSeconds}), ` +
    'while the controller still reports the previous rollout complete (NewReplicaSetAvailable) and so never times this one out'
  );
}

/** {@link rolloutState} of a Deployment as the API server returned it. */
export function rolloutStateOf(raw: unknown): { state: 'waiting' | 'complete' | 'failed'; message: string } {
  return rolloutState(deploymentSchema.parse(raw));
}

export function createDeploymentActivities(deps: KubernetesActivityDeps) {
  const resources = new RawResources(deps.kubeConfig);
  const pollMs = deps.pollIntervalMs ?? 1000;
  const namespaceOf = (namespace: string | undefined) => namespace ?? deps.namespace ?? DEFAULT_KUBERNETES_NAMESPACE;
  const refOf = (kind: typeof DEPLOYMENTS | typeof REPLICA_SETS, namespace: string): ResourceRef => ({
    ...kind,
    namespace,
  });

  async function readDeployment(namespace: string, service: string): Promise<Deployment> {
    const object = `deployment ${namespace}/${service}`;
    const raw = await callApi(
      object,
      () => resources.get(refOf(DEPLOYMENTS, namespace), service),
      `${object} does not exist`,
    );
    return deploymentSchema.parse(raw);
  }

  /** ReplicaSets the Deployment controls that carry a revision, oldest revision first. */
  async function ownedReplicaSets(namespace: string, deployment: Deployment): Promise<ReplicaSet[]> {
    const raw = await callApi(`replicasets of deployment ${namespace}/${deployment.metadata.name}`, () =>
      resources.list(refOf(REPLICA_SETS, namespace)),
    );
    return raw
      .map((item) => replicaSetSchema.parse(item))
      .filter((rs) =>
        rs.metadata.ownerReferences?.some((o) => o.controller === true && o.uid === deployment.metadata.uid),
      )
      .filter((rs) => revisionOf(rs.metadata.annotations) > 0)
      .sort((a, b) => revisionOf(a.metadata.annotations) - revisionOf(b.metadata.annotations));
  }

  function describeRevisions(replicaSets: ReplicaSet[]): string {
    return replicaSets.map((rs) => revisionOf(rs.metadata.annotations)).join(', ') || 'none';
  }

  /** The ReplicaSet of `revision`, or of the previous revision when none is given. */
  function targetOf(
    namespace: string,
    service: string,
    replicaSets: ReplicaSet[],
    current: number,
    revision: number | undefined,
  ): ReplicaSet {
    const object = `deployment ${namespace}/${service}`;
    if (revision === undefined) {
      const previous = replicaSets.filter((rs) => revisionOf(rs.metadata.annotations) < current).at(-1);
      if (!previous) {
        throw kubernetesRefusal(
          KubernetesFailureType.UnknownObject,
          object,
          `${object} has no revision before ${current} to roll back to (revisions: ${describeRevisions(replicaSets)})`,
        );
      }
      return previous;
    }
    const target = replicaSets.find((rs) => revisionOf(rs.metadata.annotations) === revision);
    if (!target) {
      throw kubernetesRefusal(
        KubernetesFailureType.UnknownObject,
        object,
        `${object} has no revision ${revision} (revisions: ${describeRevisions(replicaSets)})`,
      );
    }
    return target;
  }

  return {
    /** The revisions of a Deployment, like `kubectl rollout history deployment/<service>`. */
    async deploymentHistory(input: DeploymentHistoryInput): Promise<DeploymentHistory> {
      const namespace = namespaceOf(input.namespace);
      const deployment = await readDeployment(namespace, input.service);
      const revisions: DeploymentRevision[] = (await ownedReplicaSets(namespace, deployment)).map((rs) => ({
        revision: revisionOf(rs.metadata.annotations),
        replicaSet: rs.metadata.name,
        images: imagesOf(rs.spec.template),
        ...(rs.metadata.annotations?.[CHANGE_CAUSE] ? { changeCause: rs.metadata.annotations[CHANGE_CAUSE] } : {}),
        ...(rs.metadata.creationTimestamp ? { createdAt: rs.metadata.creationTimestamp } : {}),
        readyReplicas: rs.status?.readyReplicas ?? 0,
      }));
      return {
        namespace,
        service: input.service,
        currentRevision: revisionOf(deployment.metadata.annotations),
        revisions,
      };
    },

    /**
     * Decides a rollback without changing anything: the revision the Deployment is at and the one
     * to go back to (default: the previous one). Refuses, non-retryable, an unknown Deployment or
     * revision and a paused Deployment.
     */
    async planDeploymentRollback(input: {
      service: string;
      namespace?: string;
      toRevision?: number;
    }): Promise<DeploymentRollbackPlan> {
      const namespace = namespaceOf(input.namespace);
      const deployment = await readDeployment(namespace, input.service);
      if (deployment.spec.paused) {
        throw kubernetesRefusal(
          FailureType.InvalidInput,
          `deployment ${namespace}/${input.service}`,
          'is paused; resume it before rolling back',
        );
      }
      const replicaSets = await ownedReplicaSets(namespace, deployment);
      const current = revisionOf(deployment.metadata.annotations);
      const target = targetOf(namespace, input.service, replicaSets, current, input.toRevision);
      return {
        namespace,
        service: input.service,
        fromRevision: current,
        fromImages: imagesOf(deployment.spec.template),
        toRevision: revisionOf(target.metadata.annotations),
        toImages: imagesOf(target.spec.template),
        alreadyAtTarget: sameTemplate(target.spec.template, deployment.spec.template),
      };
    },

    /**
     * Puts the pod template of `revision`'s ReplicaSet back on the Deployment, as
     * `kubectl rollout undo --to-revision` does (one JSON patch of the template and annotations).
     * Idempotent: when the template is already there nothing is patched.
     */
    async applyDeploymentRevision(input: {
      service: string;
      namespace: string;
      revision: number;
    }): Promise<{ patched: boolean }> {
      const { namespace, service } = input;
      const object = `deployment ${namespace}/${service}`;
      const deployment = await readDeployment(namespace, service);
      const replicaSets = await ownedReplicaSets(namespace, deployment);
      const target = targetOf(
        namespace,
        service,
        replicaSets,
        revisionOf(deployment.metadata.annotations),
        input.revision,
      );
      if (sameTemplate(target.spec.template, deployment.spec.template)) return { patched: false };
      const annotations: Record<string, string> = {};
      for (const [key, value] of Object.entries(deployment.metadata.annotations ?? {})) {
        if (CONTROLLER_ANNOTATIONS.has(key)) annotations[key] = value;
      }
      for (const [key, value] of Object.entries(target.metadata.annotations ?? {})) {
        if (!CONTROLLER_ANNOTATIONS.has(key)) annotations[key] = value;
      }
      const operations: JsonPatchOperation[] = [
        // The object must still be the one we read: a Deployment deleted and re-created meanwhile is not patched.
        { op: 'test', path: '/metadata/uid', value: deployment.metadata.uid },
        { op: 'replace', path: '/spec/template', value: withoutHashLabel(target.spec.template) },
        { op: 'add', path: '/metadata/annotations', value: annotations },
      ];
      await callApi(
        object,
        () => resources.jsonPatch(refOf(DEPLOYMENTS, namespace), service, operations),
        `${object} does not exist`,
      );
      return { patched: true };
    },

    /**
     * Waits, heartbeating, until the Deployment's rollout completes or passes its progress
     * deadline; a failed rollout is returned, not thrown, so the workflow can roll forward.
     */
    async waitForDeploymentRollout(input: { service: string; namespace: string }): Promise<DeploymentRollout> {
      const { namespace, service } = input;
      const progress: RolloutProgress = { counts: '', sinceMs: Date.now() };
      for (;;) {
        const deployment = await readDeployment(namespace, service);
        const judged = rolloutState(deployment);
        const stalled =
          judged.state === 'waiting' ? stalledRolloutMessage(deployment, progress, Date.now()) : undefined;
        const { state, message } = stalled === undefined ? judged : { state: 'failed' as const, message: stalled };
        heartbeat({ service, namespace, state, message });
        if (state !== 'waiting') {
          return {
            namespace,
            service,
            outcome: state,
            message,
            revision: revisionOf(deployment.metadata.annotations),
            images: imagesOf(deployment.spec.template),
            replicas: deployment.status?.replicas ?? 0,
            updatedReplicas: deployment.status?.updatedReplicas ?? 0,
            availableReplicas: deployment.status?.availableReplicas ?? 0,
          };
        }
        await sleep(pollMs);
      }
    },

    /** Names of the Deployments a Helm release installed (helm annotates what it owns). */
    async releaseDeployments(input: { release: string; namespace: string }): Promise<string[]> {
      const raw = await callApi(`deployments of helm release ${input.namespace}/${input.release}`, () =>
        resources.list(refOf(DEPLOYMENTS, input.namespace)),
      );
      return raw
        .map((item) => deploymentSchema.parse(item))
        .filter((d) => d.metadata.annotations?.['meta.helm.sh/release-name'] === input.release)
        .filter((d) => d.metadata.annotations?.['meta.helm.sh/release-namespace'] === input.namespace)
        .map((d) => d.metadata.name)
        .sort();
    },
  };
}
