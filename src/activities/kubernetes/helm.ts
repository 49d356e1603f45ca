import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ApplicationFailure } from '@temporalio/common';
import { cancellationSignal, heartbeat } from '@temporalio/activity';
import { z } from 'zod';
import {
  DEFAULT_KUBERNETES_NAMESPACE,
  KubernetesFailureType,
  type HelmHistory,
  type HelmRevision,
  type HelmRollbackResult,
} from '../../contracts/kubernetes';
import { FailureType } from '../../errors';
import type {
  DiffHelmValuesInput,
  DiffHelmValuesResult,
  HelmValuesRecord,
  RecordHelmValuesInput,
  RecordHelmValuesResult,
} from '../../contracts/helm-values';
import type { KubernetesActivityDeps } from './api';
import { helmFailure, kubernetesFailure, kubernetesRefusal } from './errors';
import {
  commitHelmValues,
  diffHelmValues,
  helmValuesUnavailable,
  readHelmValuesRecord,
  readSecretValues,
  redactHelmValues,
  storeHelmValuesRecord,
} from './helm-values';

const historySchema = z.array(
  z.looseObject({
    revision: z.number(),
    updated: z.string(),
    status: z.string(),
    chart: z.string(),
    app_version: z.string().optional(),
    description: z.string().optional(),
  }),
);

const OUTPUT_LINES_KEPT = 20;

interface HelmRun {
  code: number | null;
  stdout: string;
  /** Last lines of stdout and stderr together, in order. */
  lines: string[];
}

export function createHelmActivities(deps: KubernetesActivityDeps) {
  const namespaceOf = (namespace: string | undefined) => namespace ?? deps.namespace ?? DEFAULT_KUBERNETES_NAMESPACE;
  const releaseOf = (release: string | undefined) => release ?? deps.helmRelease ?? 'eloquent';

  /** Runs helm, streaming each output line into a heartbeat; cancelling the activity kills it. */
  function runHelm(args: string[], step: string): Promise<HelmRun> {
    const fullArgs = deps.kubeconfigPath ? [...args, '--kubeconfig', deps.kubeconfigPath] : args;
    return new Promise((resolve, reject) => {
      const child = spawn(deps.helmBin, fullArgs, { signal: cancellationSignal(), stdio: ['ignore', 'pipe', 'pipe'] });
      const lines: string[] = [];
      let stdout = '';
      const keep = (line: string) => {
        lines.push(line);
        if (lines.length > OUTPUT_LINES_KEPT) lines.shift();
        heartbeat({ step, line });
      };
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString('utf8');
      });
      createInterface({ input: child.stdout }).on('line', keep);
      createInterface({ input: child.stderr }).on('line', keep);
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') {
          reject(
            ApplicationFailure.create({
              type: FailureType.StoreRejected,
              message: `[kubernetes] the helm executable ${JSON.stringify(deps.helmBin)} was not found (set HELM_BIN)`,
              nonRetryable: true,
            }),
          );
        } else reject(err);
      });
      child.on('close', (code) => resolve({ code, stdout, lines }));
    });
  }

  async function history(release: string, namespace: string): Promise<HelmRevision[]> {
    const run = await runHelm(
      ['history', release, '--namespace', namespace, '--output', 'json', '--max', '256'],
      'helm history',
    );
    if (run.code !== 0) throw helmFailure(run, `helm release ${namespace}/${release}`, 'helm history');
    return historySchema
      .parse(JSON.parse(run.stdout))
      .map((r) => ({
        revision: r.revision,
        updated: r.updated,
        status: r.status,
        chart: r.chart,
        appVersion: r.app_version ?? '',
        description: r.description ?? '',
      }))
      .sort((a, b) => a.revision - b.revision);
  }

  /** `helm get values --all` of one revision, as JSON. */
  async function valuesOf(release: string, namespace: string, revision: number): Promise<unknown> {
    const run = await runHelm(
      ['get', 'values', release, '--all', '--revision', String(revision), '--namespace', namespace, '--output', 'json'],
      'helm get values',
    );
    if (run.code !== 0)
      throw helmFailure(run, `helm release ${namespace}/${release}`, `helm get values --revision ${revision}`);
    return JSON.parse(run.stdout || 'null') as unknown;
  }

  return {
    /**
     * The runbook's "Helm values: always, version-controlled (excluding secrets)": `helm get values
     * --all` of every revision helm still has that is not stored yet, redacted (keys matching the
     * configured pattern, and every value found in a Secret of the namespace), stored per revision in
     * the backup store, then committed to the git repository when one is configured. Idempotent.
     */
    async recordHelmValues(input: RecordHelmValuesInput): Promise<RecordHelmValuesResult> {
      const release = releaseOf(input.release);
      const namespace = namespaceOf(input.namespace);
      const kept = deps.helmValues;
      if (!kept) throw helmValuesUnavailable(release, namespace);
      const revisions = await history(release, namespace);
      const kubeConfig = typeof deps.kubeConfig === 'function' ? deps.kubeConfig() : deps.kubeConfig;
      const secrets = await readSecretValues(kubeConfig, namespace).catch((err: unknown) => {
        throw kubernetesFailure(err, `secrets of namespace ${namespace}`);
      });
      const stored: number[] = [];
      const records: HelmValuesRecord[] = [];
      for (const revision of revisions) {
        heartbeat({ step: 'helm get values', revision: revision.revision });
        const existing = await readHelmValuesRecord(kept.store, namespace, release, revision.revision);
        if (existing) {
          records.push(existing);
          continue;
        }
        const redaction = redactHelmValues(
          await valuesOf(release, namespace, revision.revision),
          kept.redactKeyPattern,
          secrets,
        );
        const record: HelmValuesRecord = {
          release,
          namespace,
          revision: revision.revision,
          chart: revision.chart,
          status: revision.status,
          updated: revision.updated,
          description: revision.description,
          values: redaction.values,
          redacted: redaction.redacted,
        };
        if (await storeHelmValuesRecord(kept.store, record)) stored.push(revision.revision);
        records.push(record);
      }
      const committed = kept.gitDirectory ? await commitHelmValues(kept.gitDirectory, records) : undefined;
      return {
        release,
        namespace,
        stored,
        ...(committed ? { committed } : {}),
        revisions: revisions.map((r) => r.revision),
      };
    },

    /** What changed between the stored values of two revisions. @throws `UnknownKubernetesObject` for a revision never stored. */
    async diffHelmValues(input: DiffHelmValuesInput): Promise<DiffHelmValuesResult> {
      const release = releaseOf(input.release);
      const namespace = namespaceOf(input.namespace);
      const kept = deps.helmValues;
      if (!kept) throw helmValuesUnavailable(release, namespace);
      const read = async (revision: number) => {
        const record = await readHelmValuesRecord(kept.store, namespace, release, revision);
        if (!record)
          throw kubernetesRefusal(
            KubernetesFailureType.UnknownObject,
            `helm release ${namespace}/${release}`,
            `no values are stored for revision ${revision} of helm release ${namespace}/${release} (record them with helm-values record)`,
          );
        return record;
      };
      const [from, to] = [await read(input.from), await read(input.to)];
      return { release, namespace, from: input.from, to: input.to, changes: diffHelmValues(from.values, to.values) };
    },

    /** `helm history <release>`: every stored revision, oldest first. An unknown release is refused. */
    async helmHistory(input: { release?: string; namespace?: string }): Promise<HelmHistory> {
      const release = releaseOf(input.release);
      const namespace = namespaceOf(input.namespace);
      return { release, namespace, revisions: await history(release, namespace) };
    },

    /**
     * `helm rollback <release> <revision>` (default: the revision before the current one), checked
     * first against `helm history` so an unknown release or revision changes nothing. Idempotent:
     * `expectedCurrentRevision` is the release's revision before the rollback, so a retry after
     * helm already succeeded finds its "Rollback to N" revision and does not roll back twice.
     */
    async helmRollback(input: {
      release: string;
      namespace: string;
      revision?: number;
      expectedCurrentRevision: number;
    }): Promise<HelmRollbackResult> {
      const { release, namespace } = input;
      const object = `helm release ${namespace}/${release}`;
      const before = await history(release, namespace);
      const current = before.at(-1);
      if (!current) throw kubernetesRefusal(KubernetesFailureType.UnknownObject, object, `${object} has no revisions`);
      const target = input.revision ?? input.expectedCurrentRevision - 1;
      const result = (newRevision: number, output: string[]): HelmRollbackResult => ({
        release,
        namespace,
        fromRevision: input.expectedCurrentRevision,
        toRevision: target,
        newRevision,
        output,
      });
      if (current.revision !== input.expectedCurrentRevision) {
        if (current.revision === input.expectedCurrentRevision + 1 && current.description === `Rollback to ${target}`) {
          return result(current.revision, [`already rolled back to ${target} as revision ${current.revision}`]);
        }
        throw kubernetesRefusal(
          FailureType.OperationConflict,
          object,
          `changed while rolling back: expected revision ${input.expectedCurrentRevision}, found ${current.revision} (${current.description})`,
        );
      }
      if (!before.some((r) => r.revision === target)) {
        throw kubernetesRefusal(
          KubernetesFailureType.UnknownObject,
          object,
          `${object} has no revision ${target} (revisions: ${before.map((r) => r.revision).join(', ')})`,
        );
      }
      const run = await runHelm(['rollback', release, String(target), '--namespace', namespace], 'helm rollback');
      if (run.code !== 0)
        throw helmFailure(run, `helm release ${namespace}/${release}`, `helm rollback to revision ${target}`);
      const after = await history(release, namespace);
      return result(after.at(-1)?.revision ?? current.revision + 1, run.lines);
    },
  };
}
