import { heartbeat, sleep } from '@temporalio/activity';
import { z } from 'zod';
import {
  DEFAULT_BACKUP_TTL,
  DEFAULT_KUBERNETES_NAMESPACE,
  VELERO_NAMESPACE,
  VELERO_TERMINAL_PHASES,
  type VeleroBackupResult,
  type VeleroTerminalPhase,
} from '../../contracts/kubernetes';
import { FailureType } from '../../errors';
import { RawResources, type KubernetesActivityDeps } from './api';
import { callApi, httpStatusOf, kubernetesFailure, kubernetesRefusal } from './errors';

const BACKUPS = { group: 'velero.io', version: 'v1', plural: 'backups', namespace: VELERO_NAMESPACE } as const;

const backupSchema = z.looseObject({
  metadata: z.looseObject({ name: z.string() }),
  spec: z
    .looseObject({
      includedNamespaces: z.array(z.string()).nullish(),
      ttl: z.string().optional(),
      storageLocation: z.string().optional(),
    })
    .optional(),
  status: z
    .looseObject({
      phase: z.string().optional(),
      errors: z.number().optional(),
      warnings: z.number().optional(),
      failureReason: z.string().optional(),
      validationErrors: z.array(z.string()).nullish(),
      expiration: z.string().nullish(),
      progress: z.looseObject({ itemsBackedUp: z.number().optional(), totalItems: z.number().optional() }).nullish(),
    })
    .optional(),
});
type Backup = z.infer<typeof backupSchema>;

export interface CreateVeleroBackupInput {
  name: string;
  includedNamespaces?: string[];
  ttl?: string;
  storageLocation?: string;
}

function isTerminal(phase: string | undefined): phase is VeleroTerminalPhase {
  return (VELERO_TERMINAL_PHASES as readonly string[]).includes(phase ?? '');
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && [...a].sort().every((value, i) => value === [...b].sort()[i]);
}

export function createVeleroActivities(deps: KubernetesActivityDeps) {
  const resources = new RawResources(deps.kubeConfig);
  const pollMs = deps.pollIntervalMs ?? 1000;

  async function readBackup(name: string): Promise<Backup> {
    const object = `backup ${VELERO_NAMESPACE}/${name}`;
    return backupSchema.parse(
      await callApi(object, () => resources.get(BACKUPS, name), `Velero ${object} does not exist`),
    );
  }

  return {
    /**
     * Creates a Velero `Backup` (velero.io/v1) in the `velero` namespace; the Velero server does
     * the work. Idempotent: an existing Backup of the same name and spec counts as created; one
     * with another spec is refused.
     */
    async createVeleroBackup(
      input: CreateVeleroBackupInput,
    ): Promise<{ name: string; namespace: string; includedNamespaces: string[]; ttl: string; created: boolean }> {
      const includedNamespaces = input.includedNamespaces ?? [deps.namespace ?? DEFAULT_KUBERNETES_NAMESPACE];
      const ttl = input.ttl ?? DEFAULT_BACKUP_TTL;
      const object = `backup ${VELERO_NAMESPACE}/${input.name}`;
      const body = {
        apiVersion: 'velero.io/v1',
        kind: 'Backup',
        metadata: {
          name: input.name,
          namespace: VELERO_NAMESPACE,
          labels: { 'app.kubernetes.io/managed-by': 'eloquent-recovery' },
        },
        spec: { includedNamespaces, ttl, ...(input.storageLocation ? { storageLocation: input.storageLocation } : {}) },
      };
      try {
        await resources.create(BACKUPS, body);
        return { name: input.name, namespace: VELERO_NAMESPACE, includedNamespaces, ttl, created: true };
      } catch (err) {
        if (httpStatusOf(err) === 404) {
          throw kubernetesFailure(
            err,
            object,
            `cannot create ${object}; is Velero installed (CRD backups.velero.io, namespace ${VELERO_NAMESPACE})?`,
          );
        }
        if (httpStatusOf(err) !== 409) throw kubernetesFailure(err, object);
      }
      // A retry after a create whose answer was lost lands here: the same spec is success.
      const existing = await readBackup(input.name);
      if (!sameList(existing.spec?.includedNamespaces ?? [], includedNamespaces) || existing.spec?.ttl !== ttl) {
        throw kubernetesRefusal(
          FailureType.InvalidInput,
          object,
          `already exists with includedNamespaces ${JSON.stringify(existing.spec?.includedNamespaces ?? [])} and ttl ${JSON.stringify(existing.spec?.ttl)}; choose another name`,
        );
      }
      return { name: input.name, namespace: VELERO_NAMESPACE, includedNamespaces, ttl, created: false };
    },

    /**
     * Waits, heartbeating with the phase and progress, until the Backup reaches Completed,
     * PartiallyFailed, Failed or FailedValidation, and returns its error and warning counts.
     */
    async waitForVeleroBackup(input: { name: string }): Promise<VeleroBackupResult> {
      for (;;) {
        const backup = await readBackup(input.name);
        const status = backup.status ?? {};
        heartbeat({ name: input.name, phase: status.phase ?? 'New', progress: status.progress ?? null });
        if (isTerminal(status.phase)) {
          return {
            name: input.name,
            namespace: VELERO_NAMESPACE,
            phase: status.phase,
            includedNamespaces: backup.spec?.includedNamespaces ?? [],
            ttl: backup.spec?.ttl ?? '',
            errors: status.errors ?? 0,
            warnings: status.warnings ?? 0,
            ...(status.failureReason ? { failureReason: status.failureReason } : {}),
            validationErrors: status.validationErrors ?? [],
            ...(status.expiration ? { expiration: status.expiration } : {}),
          };
        }
        await sleep(pollMs);
      }
    },
  };
}
