import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { runCli } from '../src/cli/main';
import { captureIo } from './support/cli-io';
import { backupNameFor } from '../src/contracts/kubernetes';
import { localKube } from './helpers/local-kube';
import { startTestWorker, type TestWorker } from './support/test-worker';

/** The Kubernetes workflows through the operator CLI, on the project's own worker and the real API server. */
describe('CLI Kubernetes commands', () => {
  const kube = localKube();
  const backups = { group: 'velero.io', version: 'v1', namespace: 'velero', plural: 'backups' };
  let env: TestWorker;
  const created: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('kubernetes-cli');
  });
  afterAll(async () => {
    for (const name of created)
      await kube.custom.deleteNamespacedCustomObject({ ...backups, name }).catch(() => undefined);
    await env?.shutdown();
  });

  it('k8s-backup starts backupKubernetes, which creates the Velero Backup and reports its final phase', async () => {
    const io = captureIo();
    expect(
      await runCli(
        [
          'k8s-backup',
          '--namespaces',
          'eloquent',
          '--ttl',
          '48h',
          '--no-wait',
          '--json',
          '--task-queue',
          env.taskQueue,
        ],
        io,
      ),
    ).toBe(0);
    const { workflowId } = JSON.parse(io.out) as { workflowId: string };
    expect(workflowId).toMatch(/^backup-kubernetes-/);
    const name = backupNameFor(workflowId);
    created.push(name);
    let backup: { spec?: { includedNamespaces?: string[]; ttl?: string } } | undefined;
    for (let i = 0; i < 100 && !backup; i++) {
      backup = await kube.custom.getNamespacedCustomObject({ ...backups, name }).then(
        (b) => b as { spec?: { includedNamespaces?: string[]; ttl?: string } },
        async () => void (await new Promise((r) => setTimeout(r, 200))),
      );
    }
    expect(backup?.spec).toMatchObject({ includedNamespaces: ['eloquent'], ttl: '48h' });
    // Play the Velero server (there is none here): the Backup completes with two warnings.
    await kube.custom.patchNamespacedCustomObject(
      { ...backups, name, body: { status: { phase: 'PartiallyFailed', errors: 0, warnings: 2 } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    const result = await env.client.workflow.getHandle(workflowId).result();
    expect(result).toMatchObject({ name, phase: 'PartiallyFailed', warnings: 2 });
  });

  it('rollback refuses without --confirm off a terminal (usage error, nothing started), and so does a bad revision', async () => {
    expect(
      await runCli(
        ['rollback', 'api', '--to-revision', 'two', '--confirm', 'api', '--task-queue', env.taskQueue],
        captureIo(),
      ),
    ).toBe(2);
    const io = captureIo();
    expect(await runCli(['rollback', 'api', '--task-queue', env.taskQueue], io)).toBe(2);
    expect(io.err).toMatch(/--confirm/);
    const started: string[] = [];
    for await (const run of env.client.workflow.list({
      query: `TaskQueue = '${env.taskQueue}' AND WorkflowType = 'rollbackDeployment'`,
    }))
      started.push(run.workflowId);
    expect(started).toEqual([]);
  });
});
