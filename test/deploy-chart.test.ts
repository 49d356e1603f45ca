import * as path from 'node:path';
import { RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { REPO_ROOT } from './support/paths';
import { createNamespace, deleteNamespace, helm, localKube, type LocalKube } from './helpers/local-kube';

const CHART = path.join(REPO_ROOT, 'deploy', 'chart', 'eloquent-recovery');

describe('the worker Helm chart (deploy/chart/eloquent-recovery) installed into the local API server', () => {
  let kube: LocalKube;
  let namespace: string;
  const release = 'recovery';

  beforeAll(async () => {
    kube = localKube();
    namespace = await createNamespace(kube, 'chart');
    await helm(kube, [
      'install',
      release,
      CHART,
      '--namespace',
      namespace,
      '--set',
      'secrets.postgresPassword=pg-secret,secrets.backupMasterKey=bWFzdGVy,secrets.temporalApiKey=tk-9f3a7e51',
      '--wait=false',
    ]);
  }, 120_000);
  afterAll(async () => {
    if (kube && namespace) {
      await helm(kube, ['uninstall', release, '--namespace', namespace]).catch(() => undefined);
      await deleteNamespace(kube, namespace);
    }
  });

  it('creates the Deployment with its ServiceAccount, secrets as files and metrics on 0.0.0.0', async () => {
    const deployment = await kube.apps.readNamespacedDeployment({ name: release, namespace });
    const pod = deployment.spec?.template.spec;
    expect(pod?.serviceAccountName).toBe(release);
    await kube.core.readNamespacedServiceAccount({ name: release, namespace });
    const env = Object.fromEntries((pod?.containers[0]?.env ?? []).map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env.METRICS_HOST).toBe('0.0.0.0');
    expect(env.POSTGRES_PASSWORD_FILE).toBe('/etc/eloquent-recovery/secrets/postgres-password');
    expect(env.BACKUP_MASTER_KEY_FILE).toBe('/etc/eloquent-recovery/secrets/backup-master-key');
    expect(env.TEMPORAL_API_KEY).toMatchObject({
      secretKeyRef: { name: `${release}-secrets`, key: 'temporal-api-key' },
    });
    // No secret value is written into the Deployment itself.
    expect(JSON.stringify(deployment)).not.toMatch(/pg-secret|bWFzdGVy|tk-9f3a7e51/);
    const secret = await kube.core.readNamespacedSecret({ name: `${release}-secrets`, namespace });
    expect(Object.keys(secret.data ?? {}).sort()).toEqual([
      'backup-master-key',
      'postgres-password',
      'temporal-api-key',
    ]);
  });

  it('grants the ServiceAccount what the Kubernetes workflows use, and serves metrics through a Service', async () => {
    const rbac = kube.kubeConfig.makeApiClient(RbacAuthorizationV1Api);
    const role = await rbac.readNamespacedRole({ name: `${release}-workflows`, namespace });
    const rules = (role.rules ?? []).map(
      (r) => `${(r.apiGroups ?? []).join(',')}/${(r.resources ?? []).join(',')}:${(r.verbs ?? []).join(',')}`,
    );
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^apps\/deployments:.*patch/),
        expect.stringMatching(/^apps\/replicasets:.*list/),
        expect.stringMatching(/^\/secrets:.*create/),
        expect.stringMatching(/^velero\.io\/backups:.*create/),
      ]),
    );
    const binding = await rbac.readNamespacedRoleBinding({ name: `${release}-workflows`, namespace });
    expect(binding.subjects).toEqual([expect.objectContaining({ kind: 'ServiceAccount', name: release, namespace })]);
    const service = await kube.core.readNamespacedService({ name: `${release}-metrics`, namespace });
    expect(service.spec?.ports?.[0]).toMatchObject({ port: 9464, targetPort: 'metrics' });
  });
});
