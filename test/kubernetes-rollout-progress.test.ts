import { stalledRolloutMessage, type RolloutProgress } from '../src/activities/kubernetes/deployments';

// The Deployment as the controller leaves it when a rollback to an existing ReplicaSet whose pods
// never become ready is not renewed: two old pods available, one new pod not ready, and the
// Progressing condition still the previous rollout's NewReplicaSetAvailable. Seen on the local
// control plane under load (test/kubernetes.test.ts hung for its 120 s in CI); the controller
// never reports ProgressDeadlineExceeded for it, so without a clock of our own the wait never ends.
function deployment(counts: { replicas: number; updated: number; ready: number; available: number }, reason: string) {
  return {
    metadata: {
      name: 'worker',
      namespace: 'ns',
      uid: '2f0d6c1e-0b6e-4c57-9a43-5a1f0d2b7c11',
      generation: 7,
      annotations: { 'deployment.kubernetes.io/revision': '5' },
    },
    spec: {
      replicas: 2,
      progressDeadlineSeconds: 3,
      template: {
        metadata: { labels: { app: 'worker' } },
        spec: { containers: [{ name: 'worker', image: 'w:broken' }] },
      },
    },
    status: {
      observedGeneration: 7,
      replicas: counts.replicas,
      updatedReplicas: counts.updated,
      readyReplicas: counts.ready,
      availableReplicas: counts.available,
      conditions: [
        { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
        {
          type: 'Progressing',
          status: 'True',
          reason,
          message: 'ReplicaSet "worker-abc" has successfully progressed.',
        },
      ],
    },
  };
}

const stuck = { replicas: 3, updated: 1, ready: 2, available: 2 };

describe('the rollout wait’s own progress clock', () => {
  it('fails a rollout left under NewReplicaSetAvailable once it made no progress for progressDeadlineSeconds', () => {
    const progress: RolloutProgress = { counts: '', sinceMs: 0 };
    const raw = deployment(stuck, 'NewReplicaSetAvailable');
    expect(stalledRolloutMessage(raw, progress, 1_000)).toBeUndefined(); // first sight starts the clock
    expect(stalledRolloutMessage(raw, progress, 3_500)).toBeUndefined();
    expect(stalledRolloutMessage(raw, progress, 4_100)).toBe(
      'revision 5 has timed out progressing: replicas/updated/ready/available stayed 3/1/2/2 for 3 s ' +
        '(progressDeadlineSeconds 3), while the controller still reports the previous rollout complete ' +
        '(NewReplicaSetAvailable) and so never times this one out',
    );
  });

  it('restarts the clock on any change of the counts the controller calls progress', () => {
    const progress: RolloutProgress = { counts: '', sinceMs: 0 };
    expect(stalledRolloutMessage(deployment(stuck, 'NewReplicaSetAvailable'), progress, 0)).toBeUndefined();
    const moved = deployment({ ...stuck, ready: 3 }, 'NewReplicaSetAvailable');
    expect(stalledRolloutMessage(moved, progress, 2_900)).toBeUndefined();
    expect(stalledRolloutMessage(moved, progress, 5_000)).toBeUndefined();
    expect(stalledRolloutMessage(moved, progress, 5_900)).toMatch(/timed out progressing/);
  });

  it('leaves a rollout whose condition the controller renewed to the controller’s own deadline', () => {
    const progress: RolloutProgress = { counts: '', sinceMs: 0 };
    const raw = deployment(stuck, 'ReplicaSetUpdated');
    expect(stalledRolloutMessage(raw, progress, 0)).toBeUndefined();
    expect(stalledRolloutMessage(raw, progress, 60_000)).toBeUndefined();
  });
});
