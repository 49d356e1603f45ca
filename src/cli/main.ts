#!/usr/bin/env node
import * as path from 'node:path';
import { createInterface } from 'node:readline/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { connectRecoveryClient, type RecoveryClient } from '../client';
import { decideParkedDeletion, reapplyDeletions } from '../client/deletion';
import { parseDuration } from '../client/validation';
import { loadConfig } from '../config';
import { BACKUP_STORES, type BackupStoreName } from '../contracts/backup';
import { formatBytes } from '../platform/describe';
import { applySchedules, DEFAULT_SCHEDULE_PREFIX, describeManagedSchedules } from '../schedules/apply-schedules';
import { loadScheduleFile } from '../schedules/schedule-file';
import { ExitCode, exitCodeOf, RefusedError, UsageError } from './exit-codes';

/** Where the CLI writes; tests and embedding callers pass their own. */
export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** True when a person can answer a confirmation question. */
  isTty: boolean;
  /** Asks a question on the terminal and returns the answer. */
  ask: (question: string) => Promise<string>;
  env: NodeJS.ProcessEnv;
}

const GLOBAL_HELP = `eloquent-recovery — operate backups, restores and deletions of organizations

Usage: eloquent-recovery <command> [options]

Commands:
  preflight                          probe every store and list organizations with stale backups
  backup <org>                       back up an organization, showing progress
  verify <backupId> [--org <org>]    verify a backup (or --latest with --org)
  restore <backupId> [--into <org>] [--replace] [--org <org>]
  delete <org> --confirm <org> [--grace 7d] [--reason <text>] [--by <name>] [--skip-backup]
  cancel-delete <org> [--reason <text>] [--by <name>]
  retry-delete <org> | abandon-delete <org> --reason <text>    decide a deletion parked on a store that stays down
  reapply-deletions [--dry-run]      delete again what a whole-platform restore brought back
  rollback <deployment> [--to-revision N] [--namespace eloquent]    kubectl rollout undo, as a workflow
  rollback-platform [--revision N] [--release eloquent]             helm rollback, as a workflow
  k8s-backup [--namespaces eloquent] [--ttl 720h]                   Velero backup of the cluster state
  status <workflowId|org>            status and progress of a run, or an organization's recent runs
  backups <org>                      an organization's backups, newest first
  stale [--max-age 36h]              organizations whose newest verified backup is too old
  archive-chat [<org>] [--older-than 9d]
  schedules apply|list|pause <id>|unpause <id>|trigger <id> [--file schedules/schedules.json]

Global options:
  --json              machine-readable output on stdout (progress goes to stderr)
  --task-queue <q>    the worker's task queue (default: TEMPORAL_TASK_QUEUE)
  --no-wait           start and print the workflow id, do not wait for the result
  --request-id <id>   idempotency key: the same id starts one workflow, not two
  -h, --help          help for a command

Exit codes: 0 ok · 1 operation failed · 2 usage or invalid input · 3 Temporal or a store unavailable ·
            4 refused (conflict, not found, confirmation declined)
`;

const COMMAND_HELP: Record<string, string> = {
  preflight: 'Usage: eloquent-recovery preflight [--json] [--max-age 36h]\n\nProbes PostgreSQL, ClickHouse, NATS and Redis through the worker, then lists organizations whose newest verified backup is older than --max-age.\n',
  backup: 'Usage: eloquent-recovery backup <org> [--reason <text>] [--stores postgres,clickhouse] [--verify] [--request-id <id>] [--no-wait] [--json]\n\nBacks up one organization and prints each artifact as it is written.\n',
  verify: 'Usage: eloquent-recovery verify <backupId> [--org <org>] | verify --org <org> --latest [--json]\n',
  restore: 'Usage: eloquent-recovery restore <backupId> [--org <org>] [--into <org>] [--replace] [--confirm <target org>] [--json]\n\n--replace overwrites the target organization: asks for confirmation on a terminal, requires --confirm <target org> otherwise.\n',
  delete:
    'Usage: eloquent-recovery delete <org> --confirm <org> [--grace 7d] [--reason <text>] [--by <name>] [--skip-backup] [--json]\n\nStarts the deletion (backup + verify first, then a cancellable grace period). Without --confirm it asks on a terminal and refuses otherwise.\n',
  'cancel-delete': 'Usage: eloquent-recovery cancel-delete <org> [--reason <text>] [--by <name>] [--json]\n',
  'retry-delete': 'Usage: eloquent-recovery retry-delete <org> [--reason <text>] [--by <name>] [--json]\n\nA deletion parked because a store stayed down: try the parked step again now.\n',
  'abandon-delete': 'Usage: eloquent-recovery abandon-delete <org> --reason <text> [--by <name>] [--confirm <org>] [--json]\n\nA parked deletion: stop it, leaving what is not yet purged (recorded in the certificate).\n',
  rollback: 'Usage: eloquent-recovery rollback <deployment> [--to-revision N] [--namespace eloquent] [--confirm <deployment>] [--json]\n',
  'rollback-platform': 'Usage: eloquent-recovery rollback-platform [--revision N] [--release eloquent] [--namespace eloquent] [--confirm <release>] [--json]\n',
  'k8s-backup': 'Usage: eloquent-recovery k8s-backup [--namespaces eloquent,other] [--ttl 720h] [--json]\n',
  'reapply-deletions':
    'Usage: eloquent-recovery reapply-deletions [--dry-run] [--by <name>] [--json]\n\nAfter a whole-platform restore by hand: deletes again every organization of the deletion log that the restore brought back.\n',
  status: 'Usage: eloquent-recovery status <workflowId|org> [--json]\n',
  backups: 'Usage: eloquent-recovery backups <org> [--json]\n',
  stale: 'Usage: eloquent-recovery stale [--max-age 36h] [--json]\n\nExits 1 when any organization is stale.\n',
  'archive-chat': 'Usage: eloquent-recovery archive-chat [<org>] [--older-than 9d] [--json]\n',
  schedules:
    'Usage: eloquent-recovery schedules apply|list|pause <id>|unpause <id>|trigger <id> [--file schedules/schedules.json] [--prefix eloquent-] [--json]\n\napply makes Temporal match the file (a second apply reports "no change"); ids are given without the prefix.\n',
};

const OPTIONS = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  'task-queue': { type: 'string' },
  'no-wait': { type: 'boolean' },
  'request-id': { type: 'string' },
  reason: { type: 'string' },
  stores: { type: 'string' },
  verify: { type: 'boolean' },
  org: { type: 'string' },
  latest: { type: 'boolean' },
  into: { type: 'string' },
  replace: { type: 'boolean' },
  confirm: { type: 'string' },
  grace: { type: 'string' },
  by: { type: 'string' },
  'dry-run': { type: 'boolean' },
  namespace: { type: 'string' },
  namespaces: { type: 'string' },
  'to-revision': { type: 'string' },
  revision: { type: 'string' },
  release: { type: 'string' },
  ttl: { type: 'string' },
  'skip-backup': { type: 'boolean' },
  'max-age': { type: 'string' },
  'older-than': { type: 'string' },
  file: { type: 'string' },
  prefix: { type: 'string' },
  'poll-ms': { type: 'string' },
} as const satisfies ParseArgsConfig['options'];

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true; strict: true }>>['values'];

/** Runs the CLI with `argv` (without node and script); returns the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<ExitCode> {
  let values: Values;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true }));
  } catch (err) {
    io.stderr(`${err instanceof Error ? err.message : String(err)}\n\n${GLOBAL_HELP}`);
    return ExitCode.Usage;
  }
  const [command, ...args] = positionals;
  if (command === undefined || command === 'help') {
    io.stdout(GLOBAL_HELP);
    return values.help || command === 'help' ? ExitCode.Ok : ExitCode.Usage;
  }
  const help = COMMAND_HELP[command];
  if (help === undefined) {
    io.stderr(`unknown command ${JSON.stringify(command)}\n\n${GLOBAL_HELP}`);
    return ExitCode.Usage;
  }
  if (values.help) {
    io.stdout(help);
    return ExitCode.Ok;
  }
  const json = values.json ?? false;
  const print = (human: string, data: unknown) => io.stdout(json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
  const progress = (line: string) => (json ? io.stderr(`${line}\n`) : io.stdout(`${line}\n`));
  let client: RecoveryClient | undefined;
  const connect = async (): Promise<RecoveryClient> => {
    client ??= await connectRecoveryClient({ config: loadConfig(io.env), ...(values['task-queue'] ? { taskQueue: values['task-queue'] } : {}) });
    return client;
  };
  try {
    return await runCommand(command, args, values, { io, print, progress, connect, json });
  } catch (err) {
    const code = exitCodeOf(err);
    const message = failureMessage(err);
    if (json) io.stdout(`${JSON.stringify({ ok: false, exitCode: code, error: message }, null, 2)}\n`);
    io.stderr(`error: ${message}\n`);
    if (code === ExitCode.Usage && (err instanceof UsageError)) io.stderr(`\n${help}`);
    return code;
  } finally {
    await client?.close();
  }
}

/** Every message of the cause chain: a workflow failure's reason sits a few causes deep. */
function failureMessage(err: unknown): string {
  const messages: string[] = [];
  let current: unknown = err;
  for (let depth = 0; depth < 8 && current instanceof Error; depth++) {
    if (current.message && !messages.includes(current.message)) messages.push(current.message);
    current = current.cause;
  }
  return messages.join(': ') || String(err);
}

interface Context {
  io: CliIo;
  json: boolean;
  print: (human: string, data: unknown) => void;
  progress: (line: string) => void;
  connect: () => Promise<RecoveryClient>;
}

function one(args: string[], what: string): string {
  const [value, ...rest] = args;
  if (value === undefined) throw new UsageError(`missing ${what}`);
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  return value;
}

/** `postgres,clickhouse` as the backup's store list. */
function parseStores(text: string): BackupStoreName[] {
  return text.split(',').map((raw) => {
    const store = BACKUP_STORES.find((s) => s === raw.trim());
    if (store === undefined) throw new UsageError(`--stores: unknown store ${JSON.stringify(raw.trim())}; expected ${BACKUP_STORES.join(', ')}`);
    return store;
  });
}


/** Asks the operator to type `expected` on a terminal; refuses without a terminal. */
async function confirm(ctx: Context, given: string | undefined, expected: string, action: string): Promise<void> {
  if (given !== undefined) {
    if (given !== expected) throw new UsageError(`--confirm must repeat ${JSON.stringify(expected)} exactly; got ${JSON.stringify(given)}`);
    return;
  }
  if (!ctx.io.isTty) throw new UsageError(`${action} is destructive: pass --confirm ${expected} (no terminal to ask on)`);
  const answer = (await ctx.io.ask(`${action}. Type the organization id "${expected}" to confirm: `)).trim();
  if (answer !== expected) throw new RefusedError(`confirmation declined (typed ${JSON.stringify(answer)}); nothing was changed`);
}

/** Prints the started run's id, or (waiting) follows its progress and prints its result as `describe` says. */
async function finishStarted(
  ctx: Context,
  client: RecoveryClient,
  workflowId: string,
  options: { wait: boolean; pollMs: number },
  describe: (result: unknown) => string,
): Promise<ExitCode> {
  ctx.progress(`started ${workflowId}`);
  if (!options.wait) {
    ctx.print(workflowId, { ok: true, workflowId });
    return ExitCode.Ok;
  }
  const result = await follow(ctx, client, workflowId, options.pollMs);
  ctx.print(describe(result), { ok: true, workflowId, result });
  return ExitCode.Ok;
}

/** Polls the run's progress query and prints what changed until the run ends; returns its result. */
async function follow(ctx: Context, client: RecoveryClient, workflowId: string, pollMs: number): Promise<unknown> {
  const result = client.waitForResult(workflowId);
  let finished = false;
  void result.then(
    () => (finished = true),
    () => (finished = true),
  );
  const shown = new Set<string>();
  let lastStep = '';
  const show = (progress: unknown) => {
    if (progress === null || typeof progress !== 'object') return;
    const p = progress as { step?: unknown; artifacts?: unknown; done?: unknown };
    const step = typeof p.step === 'string' ? p.step : '';
    if (step && step !== lastStep) {
      ctx.progress(`[${workflowId}] ${step}`);
      lastStep = step;
    }
    if (Array.isArray(p.artifacts)) {
      for (const a of p.artifacts as Array<{ store?: unknown; object?: unknown; bytes?: unknown; rows?: unknown; done?: unknown }>) {
        const key = `${String(a.store)}:${String(a.object)}`;
        if (a.done === true && !shown.has(key)) {
          shown.add(key);
          const rows = typeof a.rows === 'number' ? `, ${a.rows} rows` : '';
          ctx.progress(`  ✓ ${String(a.store)} ${String(a.object)} (${formatBytes(Number(a.bytes) || 0)}${rows})`);
        }
      }
    }
  };
  while (!finished) {
    try {
      show((await client.getOperationStatus(workflowId)).progress);
    } catch {
      // A status poll that fails (a worker restarting) is no reason to stop waiting for the result.
    }
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, pollMs))]);
  }
  return result;
}

async function runCommand(command: string, args: string[], values: Values, ctx: Context): Promise<ExitCode> {
  const pollMs = values['poll-ms'] !== undefined ? Number(values['poll-ms']) : 1000;
  const requestOptions = values['request-id'] !== undefined ? { requestId: values['request-id'] } : {};
  const wait = !values['no-wait'];
  switch (command) {
    case 'preflight': {
      if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
      const staleAfterMs = values['max-age'] !== undefined ? parseDuration(values['max-age'], '--max-age') : undefined;
      const client = await ctx.connect();
      const report = await client.preflight();
      const staleness = await client.checkStaleness(staleAfterMs);
      const lines = report.stores.map((s) => `  ${s.store.padEnd(10)} ${s.address.padEnd(22)} ${s.version.padEnd(14)} ${s.latencyMs} ms`);
      const stale = staleness.stale.map((s) => `  ${s.orgId}: ${s.newestVerifiedBackupId ? `newest verified backup ${s.newestVerifiedBackupId} is ${Math.round((s.ageMs ?? 0) / 3_600_000)} h old` : 'no verified backup'}`);
      ctx.print(
        [`every store answered:`, ...lines, `${staleness.stale.length} of ${staleness.organizations} organization(s) without a verified backup in ${Math.round(staleness.staleAfterMs / 3_600_000)} h${stale.length ? ':' : ''}`, ...stale].join('\n'),
        { ok: true, preflight: report, staleness },
      );
      return ExitCode.Ok;
    }
    case 'backup': {
      const orgId = one(args, 'organization id');
      const client = await ctx.connect();
      const started = await client.startBackup(
        {
          orgId,
          ...(values.reason !== undefined ? { reason: values.reason } : { reason: 'on demand (CLI)' }),
          ...(values.stores !== undefined ? { stores: parseStores(values.stores) } : {}),
          verify: values.verify ?? false,
        },
        requestOptions,
      );
      ctx.progress(`started ${started.workflowId} (run ${started.runId})`);
      if (!wait) {
        ctx.print(started.workflowId, { ok: true, workflowId: started.workflowId, runId: started.runId });
        return ExitCode.Ok;
      }
      const summary = await follow(ctx, client, started.workflowId, pollMs);
      const s = summary as { backupId?: string; artifacts?: number; bytes?: number; durationMs?: number };
      ctx.print(`backup ${s.backupId} of ${orgId}: ${s.artifacts} artifacts, ${formatBytes(s.bytes ?? 0)} in ${((s.durationMs ?? 0) / 1000).toFixed(1)} s`, {
        ok: true,
        workflowId: started.workflowId,
        result: summary,
      });
      return ExitCode.Ok;
    }
    case 'verify': {
      const client = await ctx.connect();
      const input = values.latest ? { orgId: values.org ?? '', latest: true as const } : { backupId: one(args, 'backup id'), ...(values.org ? { orgId: values.org } : {}) };
      const started = await client.startVerification(input, requestOptions);
      return finishStarted(ctx, client, started.workflowId, { wait, pollMs }, (result) => `verification passed: ${JSON.stringify(result)}`);
    }
    case 'restore': {
      const backupId = one(args, 'backup id');
      const mode = values.replace ? 'replace' : 'into-empty';
      const client = await ctx.connect();
      const target = values.into ?? values.org;
      if (mode === 'replace') {
        if (target === undefined) throw new UsageError('--replace needs the organization to overwrite: --into <org> or --org <org>');
        await confirm(ctx, values.confirm, target, `restore ${backupId} will REPLACE the data of organization ${target}`);
      }
      const started = await client.startRestore(
        { backupId, mode, ...(values.org ? { orgId: values.org } : {}), ...(values.into ? { targetOrgId: values.into } : {}) },
        requestOptions,
      );
      return finishStarted(ctx, client, started.workflowId, { wait, pollMs }, (result) => `restore finished: ${JSON.stringify(result)}`);
    }
    case 'delete': {
      const orgId = one(args, 'organization id');
      const gracePeriod = values.grace ?? '7d';
      parseDuration(gracePeriod, '--grace');
      await confirm(ctx, values.confirm, orgId, `this DELETES organization ${orgId} from every store after a ${gracePeriod} grace period`);
      const client = await ctx.connect();
      const started = await client.startDeletion(
        {
          orgId,
          confirmOrgId: orgId,
          requestedBy: values.by ?? ctx.io.env.USER ?? 'eloquent-recovery CLI',
          reason: values.reason ?? 'requested from the CLI',
          gracePeriod,
          skipBackup: values['skip-backup'] ?? false,
        },
        requestOptions,
      );
      ctx.print(`deletion of ${orgId} started: ${started.workflowId}; cancel within ${gracePeriod} with: eloquent-recovery cancel-delete ${orgId}`, {
        ok: true,
        workflowId: started.workflowId,
        runId: started.runId,
      });
      return ExitCode.Ok;
    }
    case 'cancel-delete': {
      const orgId = one(args, 'organization id');
      const client = await ctx.connect();
      await client.cancelDeletion(orgId, { by: values.by ?? ctx.io.env.USER ?? 'eloquent-recovery CLI', reason: values.reason ?? 'cancelled from the CLI' });
      ctx.print(`cancellation sent to delete-org-${orgId}`, { ok: true, workflowId: `delete-org-${orgId}` });
      return ExitCode.Ok;
    }
    case 'retry-delete':
    case 'abandon-delete': {
      const orgId = one(args, 'organization id');
      const decision = command === 'retry-delete' ? 'retryNow' : 'abandon';
      if (decision === 'abandon') {
        if (!values.reason) throw new UsageError('abandon-delete needs --reason');
        await confirm(ctx, values.confirm, orgId, `this ABANDONS the deletion of ${orgId}, leaving what is not yet purged`);
      }
      const client = await ctx.connect();
      await decideParkedDeletion(client.temporal, orgId, decision, { by: values.by ?? ctx.io.env.USER ?? 'eloquent-recovery CLI', reason: values.reason ?? 'retry requested from the CLI' });
      ctx.print(`${decision} sent to delete-org-${orgId}`, { ok: true, workflowId: `delete-org-${orgId}`, decision });
      return ExitCode.Ok;
    }
    case 'reapply-deletions': {
      if (args.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(args[0])}`);
      const client = await ctx.connect();
      const result = await reapplyDeletions(client.temporal, { requestedBy: values.by ?? ctx.io.env.USER ?? 'eloquent-recovery CLI', dryRun: values['dry-run'] ?? false }, { taskQueue: client.taskQueue });
      ctx.print(
        `${result.reapplied.length} organization(s) of the deletion log were back${values['dry-run'] ? ' (dry run: nothing deleted)' : ' and were deleted again'}: ${result.reapplied.map((r) => r.orgId).join(', ') || '-'}`,
        result,
      );
      return ExitCode.Ok;
    }
    case 'status': {
      const target = one(args, 'workflow id or organization id');
      const client = await ctx.connect();
      if (/^[a-z0-9_]+$/.test(target)) {
        const runs = await client.listOperations(target);
        ctx.print(runs.length ? runs.map((r) => `${r.startTime}  ${r.status.padEnd(10)} ${(r.operation ?? '').padEnd(12)} ${r.workflowId}`).join('\n') : `no runs for ${target}`, { ok: true, orgId: target, runs });
        return ExitCode.Ok;
      }
      const status = await client.getOperationStatus(target);
      const grace = status.gracePeriodLeftMs !== undefined ? `\ngrace period: ${Math.ceil(status.gracePeriodLeftMs / 1000)} s left; cancel with: eloquent-recovery cancel-delete ${status.orgId ?? '<org>'}` : '';
      ctx.print(`${status.workflowId} (${status.type}): ${status.status}${status.progress !== undefined ? `\nprogress: ${JSON.stringify(status.progress)}` : ''}${grace}`, { ok: true, ...status });
      return ExitCode.Ok;
    }
    case 'backups': {
      const orgId = one(args, 'organization id');
      const client = await ctx.connect();
      const backups = await client.listBackups(orgId);
      ctx.print(
        backups.length
          ? backups.map((b) => `${b.backupId}  ${b.status.padEnd(10)} ${formatBytes(b.storedBytes).padStart(10)}  ${b.verification ? `verified ${b.verification.result} ${b.verification.verifiedAt}` : 'not verified'}`).join('\n')
          : `no backups of ${orgId}`,
        { ok: true, orgId, backups },
      );
      return ExitCode.Ok;
    }
    case 'stale': {
      const staleAfterMs = values['max-age'] !== undefined ? parseDuration(values['max-age'], '--max-age') : undefined;
      const client = await ctx.connect();
      const report = await client.checkStaleness(staleAfterMs);
      ctx.print(
        report.stale.length
          ? report.stale.map((s) => `${s.orgId}: ${s.newestVerifiedBackupId ? `newest verified ${s.newestVerifiedBackupId} (${Math.round((s.ageMs ?? 0) / 3_600_000)} h)` : 'no verified backup'}`).join('\n')
          : `all ${report.organizations} organization(s) have a verified backup younger than ${Math.round(report.staleAfterMs / 3_600_000)} h`,
        { ok: report.stale.length === 0, ...report },
      );
      return report.stale.length === 0 ? ExitCode.Ok : ExitCode.OperationFailed;
    }
    case 'archive-chat': {
      const orgId = args[0];
      const olderThanMs = values['older-than'] !== undefined ? parseDuration(values['older-than'], '--older-than') : undefined;
      const client = await ctx.connect();
      const started = await client.startChatArchive({ ...(orgId ? { orgId } : {}), ...(olderThanMs !== undefined ? { olderThanMs } : {}) }, requestOptions);
      return finishStarted(ctx, client, started.workflowId, { wait, pollMs }, (result) => JSON.stringify(result, null, 2));
    }
    case 'rollback':
    case 'rollback-platform':
    case 'k8s-backup': {
      const client = await ctx.connect();
      const namespace = values.namespace !== undefined ? { namespace: values.namespace } : {};
      const revision = (flag: string | undefined, name: string): number | undefined => {
        if (flag === undefined) return undefined;
        if (!/^[1-9]\d*$/.test(flag)) throw new UsageError(`${name} expects a revision number, got ${JSON.stringify(flag)}`);
        return Number(flag);
      };
      let started;
      if (command === 'rollback') {
        const toRevision = revision(values['to-revision'], '--to-revision');
        await confirm(ctx, values.confirm, one(args, 'deployment name'), `this rolls deployment ${args[0]} back${toRevision ? ` to revision ${toRevision}` : ''}`);
        started = await client.startDeploymentRollback({ service: one(args, 'deployment name'), ...namespace, ...(toRevision ? { toRevision } : {}) }, requestOptions);
      } else if (command === 'rollback-platform') {
        const target = revision(values.revision, '--revision');
        await confirm(ctx, values.confirm, values.release ?? 'eloquent', `this rolls the Helm release ${values.release ?? 'eloquent'} back${target ? ` to revision ${target}` : ''}`);
        started = await client.startPlatformRollback({ ...namespace, ...(values.release ? { release: values.release } : {}), ...(target ? { revision: target } : {}) }, requestOptions);
      } else {
        const includedNamespaces = values.namespaces?.split(',').map((n) => n.trim());
        started = await client.startKubernetesBackup({ ...(includedNamespaces ? { includedNamespaces } : {}), ...(values.ttl ? { ttl: values.ttl } : {}) }, requestOptions);
      }
      return finishStarted(ctx, client, started.workflowId, { wait, pollMs }, (result) => JSON.stringify(result, null, 2));
    }
    case 'schedules':
      return runSchedules(args, values, ctx);
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

async function runSchedules(args: string[], values: Values, ctx: Context): Promise<ExitCode> {
  const [action, id, ...rest] = args;
  if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  const prefix = values.prefix ?? DEFAULT_SCHEDULE_PREFIX;
  const client = await ctx.connect();
  const scheduleId = (raw: string | undefined) => {
    if (raw === undefined) throw new UsageError(`schedules ${action ?? ''} needs a schedule id`);
    return raw.startsWith(prefix) ? raw : `${prefix}${raw}`;
  };
  switch (action) {
    case 'apply': {
      const file = await loadScheduleFile(path.resolve(values.file ?? path.join('schedules', 'schedules.json')));
      const report = await applySchedules(file, { client: client.temporal, taskQueue: client.taskQueue, prefix });
      const lines = [
        ...report.created.map((s) => `created   ${s}`),
        ...report.updated.map((s) => `updated   ${s}`),
        ...report.removed.map((s) => `removed   ${s}`),
        ...report.unchanged.map((s) => `unchanged ${s}`),
        report.noChange ? 'no change: Temporal already matches the file' : `${report.created.length} created, ${report.updated.length} updated, ${report.removed.length} removed`,
      ];
      ctx.print(lines.join('\n'), { ok: true, ...report });
      return ExitCode.Ok;
    }
    case 'list': {
      const listings = await describeManagedSchedules(client.temporal, prefix);
      ctx.print(
        listings.map((l) => `${l.scheduleId.padEnd(36)} ${l.workflowType.padEnd(18)} ${l.spec.padEnd(14)} ${l.paused ? 'PAUSED ' : 'active '} next ${l.nextRuns[0] ?? '-'}`).join('\n') || 'no schedules',
        { ok: true, schedules: listings },
      );
      return ExitCode.Ok;
    }
    case 'pause':
    case 'unpause': {
      const sid = scheduleId(id);
      const handle = client.temporal.schedule.getHandle(sid);
      if (action === 'pause') await handle.pause(`paused from the CLI by ${ctx.io.env.USER ?? 'an operator'}`);
      else await handle.unpause(`unpaused from the CLI by ${ctx.io.env.USER ?? 'an operator'}`);
      ctx.print(`${action}d ${sid}`, { ok: true, scheduleId: sid, paused: action === 'pause' });
      return ExitCode.Ok;
    }
    case 'trigger': {
      const sid = scheduleId(id);
      // Overlap ALLOW_ALL: an operator's explicit trigger runs even beside a scheduled run.
      await client.temporal.schedule.getHandle(sid).trigger('ALLOW_ALL');
      ctx.print(`triggered ${sid}`, { ok: true, scheduleId: sid });
      return ExitCode.Ok;
    }
    default:
      throw new UsageError(`schedules: expected apply, list, pause <id>, unpause <id> or trigger <id>; got ${JSON.stringify(action)}`);
  }
}

if (require.main === module) {
  const io: CliIo = {
    stdout: (t) => process.stdout.write(t),
    stderr: (t) => process.stderr.write(t),
    isTty: Boolean(process.stdin.isTTY && process.stdout.isTTY),
    ask: async (question) => {
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      try {
        return await rl.question(question);
      } finally {
        rl.close();
      }
    },
    env: process.env,
  };
  runCli(process.argv.slice(2), io).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
      process.exit(ExitCode.OperationFailed);
    },
  );
}
