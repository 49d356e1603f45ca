import { KubeConfig } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/common';
import { createKubernetesActivities, isRetryableKubernetesError } from '../src/activities/kubernetes';
import {
  backupNameFor,
  validateBackupKubernetesInput,
  validateRollbackDeploymentInput,
} from '../src/contracts/kubernetes';

const apiError = (code: number) =>
  Object.assign(new Error(`HTTP-Code: ${code}`), { code, body: '{"kind":"Status"}', headers: {} });

describe('which Kubernetes errors are retried', () => {
  it.each([
    ['a write conflict (409)', true, apiError(409)],
    ['throttling (429)', true, apiError(429)],
    ['an API server error (503)', true, apiError(503)],
    ['a missing object (404)', false, apiError(404)],
    ['a forbidden request (403)', false, apiError(403)],
    ['an invalid patch (422)', false, apiError(422)],
    [
      'a refused connection',
      true,
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }),
    ],
    ['a reset connection', true, Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })],
  ])('%s → retryable: %s', (_what, retryable, err) => {
    expect(isRetryableKubernetesError(err)).toBe(retryable);
  });

  it('turns an API server that does not answer into a retryable failure naming the object', async () => {
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'closed', server: 'https://127.0.0.1:1', skipTLSVerify: true }],
      users: [{ name: 'nobody', token: 'none' }],
      contexts: [{ name: 'closed', cluster: 'closed', user: 'nobody' }],
      currentContext: 'closed',
    });
    const activities = createKubernetesActivities({ kubeConfig, helmBin: 'helm', kubeconfigPath: undefined });
    const failure = await activities.deploymentHistory({ service: 'api', namespace: 'eloquent' }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect((failure as ApplicationFailure).nonRetryable).toBe(false);
    expect((failure as ApplicationFailure).type).toBe('StoreUnavailable');
    expect((failure as ApplicationFailure).message).toMatch(
      /^\[kubernetes object=deployment eloquent\/api\] the Kubernetes API server did not answer: .*ECONNREFUSED/,
    );
  });
});

describe('Kubernetes inputs', () => {
  it('names every bad field of a rollbackDeployment input, including unknown ones', () => {
    expect(
      validateRollbackDeploymentInput({
        service: 'api',
        namespace: 'Eloquent',
        revision: 3,
        rollForwardOnFailure: 'yes',
      }),
    ).toEqual([
      'revision is not a field of this input; expected some of service, namespace, toRevision, rollForwardOnFailure',
      'namespace must be a Kubernetes name (lowercase letters, digits and "-", at most 63 characters), got "Eloquent"',
      'rollForwardOnFailure must be true or false, got "yes"',
    ]);
    expect(validateRollbackDeploymentInput({ service: 'api' })).toEqual([]);
  });

  it('accepts "*" and Go durations in a backup input', () => {
    expect(validateBackupKubernetesInput({ includedNamespaces: ['*'], ttl: '72h30m' })).toEqual([]);
    expect(validateBackupKubernetesInput({ includedNamespaces: ['eloquent', 'Bad_NS'] })).toEqual([
      'includedNamespaces[1] must be a Kubernetes name (lowercase letters, digits and "-", at most 63 characters), got "Bad_NS"',
    ]);
  });

  it('derives a valid, distinct Backup name from any workflow id', () => {
    expect(backupNameFor('backup-kubernetes-2026-01-04T03:00:00Z')).toBe('backup-kubernetes-2026-01-04t03-00-00z');
    const long = (suffix: string) => `weekly-cluster-state-backup-scheduled-run-${'x'.repeat(40)}-${suffix}`;
    const a = backupNameFor(long('a'));
    const b = backupNameFor(long('b'));
    expect(a).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).not.toBe(b);
  });
});
