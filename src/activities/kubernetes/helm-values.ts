import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { REDACTED_VALUE, type HelmValueChange, type HelmValuesRecord } from '../../contracts/helm-values';
import { FailureType, permanentFailure } from '../../errors';
import type { BackupStore } from '../../storage/backup-store';

const run = promisify(execFile);

/** Folder of Helm values in the backup store, beside `_platform` and `_deletions`; never an organization id. */
export const HELM_VALUES_NAMESPACE = '_helm';

/** Where the Helm values go; absent in a worker without a backup store (then recording them fails, naming why). */
export interface HelmValuesDeps {
  store: BackupStore;
  /** Keys whose values are never kept, whatever they hold (HELM_VALUES_REDACT_KEYS). */
  redactKeyPattern: RegExp;
  /** A git work tree the values are committed to (HELM_VALUES_GIT_DIR); created when missing. */
  gitDirectory?: string;
}

/**
 * Secret values shorter than this are not searched for inside other strings: "true" or "1" in a
 * Secret would otherwise redact half of any values file. They are still redacted where a whole value equals them.
 */
const MIN_EMBEDDED_SECRET_LENGTH = 8;
/** Secret values shorter than this are not redacted by value at all (a key match still redacts them). */
const MIN_SECRET_LENGTH = 4;

/**
 * Every value of every Secret of the namespace, decoded — except Helm's own release records
 * (`helm.sh/release.v1`), which hold the values being redacted, not secrets of their own.
 */
export async function readSecretValues(kubeConfig: KubeConfig, namespace: string): Promise<string[]> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const list = await core.listNamespacedSecret({ namespace });
  const values = new Set<string>();
  for (const secret of list.items) {
    if (secret.type === 'helm.sh/release.v1') continue;
    for (const encoded of Object.values(secret.data ?? {})) {
      const value = Buffer.from(encoded, 'base64').toString('utf8');
      if (value.length >= MIN_SECRET_LENGTH) values.add(value);
      // A multi-line secret (a key file, a .env) may appear line by line in values.
      for (const line of value.split('\n'))
        if (line.trim().length >= MIN_EMBEDDED_SECRET_LENGTH) values.add(line.trim());
    }
  }
  // Longest first, so a secret that contains another is replaced whole.
  return [...values].sort((a, b) => b.length - a.length);
}

/**
 * The values with every secret removed: the value of any key matching `keyPattern` (a whole subtree
 * when the key names one), any value equal to a Secret's value, and any Secret value found inside
 * a longer string (a connection URL with its password). Returns the paths it redacted.
 */
export function redactHelmValues(
  values: unknown,
  keyPattern: RegExp,
  secretValues: readonly string[],
): { values: unknown; redacted: HelmValuesRecord['redacted'] } {
  const redacted: HelmValuesRecord['redacted'] = [];
  const walk = (value: unknown, at: string): unknown => {
    if (Array.isArray(value)) return value.map((item, i) => walk(item, `${at}[${i}]`));
    if (value !== null && typeof value === 'object') {
      const out: Record<string, unknown> = {};
      for (const [key, inner] of Object.entries(value)) {
        const here = at === '' ? key : `${at}.${key}`;
        if (keyPattern.test(key) && inner !== null && inner !== '' && typeof inner !== 'boolean') {
          out[key] = REDACTED_VALUE;
          redacted.push({ path: here, reason: 'key' });
        } else out[key] = walk(inner, here);
      }
      return out;
    }
    if (typeof value === 'string' || typeof value === 'number') {
      const text = String(value);
      if (secretValues.includes(text)) {
        redacted.push({ path: at, reason: 'secret' });
        return REDACTED_VALUE;
      }
      if (typeof value === 'string') {
        let result = value;
        for (const secret of secretValues)
          if (secret.length >= MIN_EMBEDDED_SECRET_LENGTH && result.includes(secret))
            result = result.split(secret).join(REDACTED_VALUE);
        if (result !== value) {
          redacted.push({ path: at, reason: 'secret' });
          return result;
        }
      }
    }
    return value;
  };
  return { values: walk(values, ''), redacted };
}

/** JSON with keys sorted at every level, so a revision's file changes only where its values do. */
export function canonicalJson(value: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sort((v as Record<string, unknown>)[k])]),
          )
        : v;
  return `${JSON.stringify(sort(value), null, 2)}\n`;
}

const revisionRef = (namespace: string, release: string) => ({
  orgId: HELM_VALUES_NAMESPACE,
  backupId: `${namespace}.${release}`,
});
const revisionFile = (revision: number) => `revision-${revision}.json`;

/** The stored record of a revision; `undefined` when it was never stored. */
export async function readHelmValuesRecord(
  store: BackupStore,
  namespace: string,
  release: string,
  revision: number,
): Promise<HelmValuesRecord | undefined> {
  const raw = await store.readJson(revisionRef(namespace, release), revisionFile(revision));
  return raw === undefined ? undefined : (raw as HelmValuesRecord);
}

/** Stores a revision's record unless it is stored already (a revision's values never change). @returns whether it wrote. */
export async function storeHelmValuesRecord(store: BackupStore, record: HelmValuesRecord): Promise<boolean> {
  const ref = revisionRef(record.namespace, record.release);
  if ((await store.readJson(ref, revisionFile(record.revision))) !== undefined) return false;
  await store.writeJson(ref, revisionFile(record.revision), record);
  return true;
}

/** Runs git in `directory` with a fixed identity, never signing, never asking. */
async function git(directory: string, args: string[]): Promise<string> {
  const { stdout } = await run(
    'git',
    [
      '-c',
      'user.name=eloquent-recovery',
      '-c',
      'user.email=eloquent-recovery@localhost',
      '-c',
      'commit.gpgsign=false',
      ...args,
    ],
    { cwd: directory, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } },
  );
  return stdout;
}

/**
 * Commits each record, oldest first, as `<namespace>/<release>/values.json` with the revision in
 * `<namespace>/<release>/revision`: one commit per revision not committed yet (the revision file
 * says how far earlier runs got), so `git log -p` of the file is the release's values history.
 * @returns the revisions committed now.
 */
export async function commitHelmValues(directory: string, records: readonly HelmValuesRecord[]): Promise<number[]> {
  await mkdir(directory, { recursive: true });
  if ((await git(directory, ['rev-parse', '--is-inside-work-tree']).catch(() => '')).trim() !== 'true')
    await git(directory, ['init', '-q']);
  const committed: number[] = [];
  for (const record of [...records].sort((a, b) => a.revision - b.revision)) {
    const folder = path.join(directory, record.namespace, record.release);
    await mkdir(folder, { recursive: true });
    const last = Number((await readFile(path.join(folder, 'revision'), 'utf8').catch(() => '0')).trim()) || 0;
    if (record.revision <= last) continue;
    await writeFile(path.join(folder, 'values.json'), canonicalJson(record.values));
    await writeFile(path.join(folder, 'revision'), `${record.revision}\n`);
    const relative = path.join(record.namespace, record.release);
    await git(directory, ['add', '--', path.join(relative, 'values.json'), path.join(relative, 'revision')]);
    await git(directory, [
      'commit',
      '-q',
      '--allow-empty',
      '-m',
      `helm ${record.namespace}/${record.release} revision ${record.revision} (${record.chart}, ${record.status}): ${record.description}`,
    ]);
    committed.push(record.revision);
  }
  return committed;
}

/** Every leaf of the values as `path → JSON text`. */
function leaves(value: unknown, at = '', out = new Map<string, string>()): Map<string, string> {
  if (Array.isArray(value) && value.length > 0) value.forEach((v, i) => leaves(v, `${at}[${i}]`, out));
  else if (value !== null && typeof value === 'object' && Object.keys(value).length > 0)
    for (const [k, v] of Object.entries(value)) leaves(v, at === '' ? k : `${at}.${k}`, out);
  else out.set(at, JSON.stringify(value));
  return out;
}

/** What changed from one revision's values to another's, leaf by leaf, sorted by path. */
export function diffHelmValues(from: unknown, to: unknown): HelmValueChange[] {
  const a = leaves(from);
  const b = leaves(to);
  const changes: HelmValueChange[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const before = a.get(key);
    const after = b.get(key);
    if (before === after) continue;
    if (before === undefined) changes.push({ path: key, change: 'added', to: after });
    else if (after === undefined) changes.push({ path: key, change: 'removed', from: before });
    else changes.push({ path: key, change: 'changed', from: before, to: after });
  }
  return changes;
}

/** The failure of a worker without a backup store for Helm values. */
export function helmValuesUnavailable(release: string, namespace: string): Error {
  return permanentFailure(
    FailureType.InvalidInput,
    `this worker keeps no Helm values: it was started without a backup store for them`,
    { store: 'kubernetes', object: `helm release ${namespace}/${release}` },
  );
}
