import { CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { httpStatusOf } from '../../src/activities/kubernetes/errors';

/**
 * Plays the kubelet for the local control plane, which has no scheduler and no kubelet: the only
 * simulated part of the Kubernetes tests besides Velero. Every pass over one namespace it
 *  - marks each pending pod Running and Ready through the pods/status subresource, unless one of
 *    its images is "broken" (those stay Pending, like a crash-looping release, so the rollout
 *    passes its progress deadline);
 *  - finishes the deletion of pods the ReplicaSet controller deleted (a real kubelet confirms a
 *    graceful deletion once the containers stopped).
 * The controllers do the rest for real: the ReplicaSet controller counts the Ready pods into the
 * ReplicaSet's status and the Deployment controller the ReplicaSets into the Deployment's.
 * Pods are never bound to a node: the API server accepts the status of an unbound pod, and an
 * unbound pod is deleted at once, so no Node object is needed.
 */
export interface FakeKubelet {
  /** Stops the loop and waits for the pass under way. */
  stop(): Promise<void>;
}

export interface FakeKubeletOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Pods with an image this returns true for never become Ready. @default none */
  isBroken?: (image: string) => boolean;
  /** Pause between passes, in milliseconds. @default 200 */
  intervalMs?: number;
}

function isReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}

function readyStatus(pod: V1Pod): object {
  const now = new Date().toISOString();
  const condition = (type: string) => ({ type, status: 'True', lastTransitionTime: now });
  return {
    status: {
      phase: 'Running',
      startTime: now,
      conditions: [
        condition('PodScheduled'),
        condition('Initialized'),
        condition('ContainersReady'),
        condition('Ready'),
      ],
      containerStatuses: (pod.spec?.containers ?? []).map((c) => ({
        name: c.name,
        image: c.image ?? '',
        imageID: '',
        ready: true,
        started: true,
        restartCount: 0,
        state: { running: { startedAt: now } },
      })),
    },
  };
}

export function startFakeKubelet(options: FakeKubeletOptions): FakeKubelet {
  const core = options.kubeConfig.makeApiClient(CoreV1Api);
  const { namespace } = options;
  const isBroken = options.isBroken ?? (() => false);
  let running = true;

  async function pass(): Promise<void> {
    const pods = await core.listNamespacedPod({ namespace });
    for (const pod of pods.items) {
      const name = pod.metadata?.name ?? '';
      try {
        if (pod.metadata?.deletionTimestamp) {
          await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: 0 });
        } else if (!isReady(pod) && !(pod.spec?.containers ?? []).some((c) => isBroken(c.image ?? ''))) {
          await core.patchNamespacedPodStatus(
            { name, namespace, body: readyStatus(pod) },
            setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
          );
        }
      } catch (err) {
        // Gone or changed since the list: the next pass sees the new state.
        if (httpStatusOf(err) !== 404 && httpStatusOf(err) !== 409) throw err;
      }
    }
  }

  const loop = (async () => {
    while (running) {
      try {
        await pass();
      } catch (err) {
        process.stderr.write(`fake kubelet (${namespace}): ${String(err)}\n`);
      }
      await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 200));
    }
  })();

  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}
