import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { ScheduleNotFoundError } from '@temporalio/client';
import * as path from 'node:path';
import { connectRecoveryClient, type RecoveryClient } from '../src/client';
import { runCli } from '../src/cli/main';
import { dropSeededOrganization, seedOrganization } from '../src/platform/seed-organization';
import { captureIo } from './support/cli-io';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';
import PACKAGE from '../package.json';

// No Temporal at this address: a command that tried to connect would exit 3, not 2.
const offline = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1' };

describe('CLI: --version, -o json, per-command options', () => {
  it('--version prints the package version and exits 0 without connecting', async () => {
    const io = captureIo(offline);
    expect(await runCli(['--version'], io)).toBe(0);
    expect(io.out).toBe(`eloquent-recovery ${PACKAGE.version}\n`);
    const json = captureIo(offline);
    expect(await runCli(['--version', '-o', 'json'], json)).toBe(0);
    expect(JSON.parse(json.out)).toEqual({ name: 'eloquent-recovery', version: PACKAGE.version });
  });

  it('-o json is --json; -o with another format is refused naming the option', async () => {
    const io = captureIo(offline);
    expect(await runCli(['abandon-delete', 'org_a', '-o', 'json'], io)).toBe(2);
    expect(JSON.parse(io.out)).toMatchObject({ ok: false, exitCode: 2, error: 'abandon-delete needs --reason' });
    const bad = captureIo(offline);
    expect(await runCli(['backups', 'org_a', '-o', 'yaml'], bad)).toBe(2);
    expect(bad.err).toMatch(/^option -o\/--output expects json or text; got "yaml"/);
  });

  it('a flag a command does not take is an error naming it: --dry-run belongs to schedules apply, prune, restore and delete', async () => {
    const backups = captureIo(offline);
    expect(await runCli(['backups', 'org_a', '--dry-run'], backups)).toBe(2);
    expect(backups.err).toMatch(/^unknown option --dry-run for command backups\n/);
    const list = captureIo(offline);
    expect(await runCli(['schedules', 'list', '--dry-run'], list)).toBe(2);
    expect(list.err).toMatch(/--dry-run is an option of schedules apply, not of schedules list/);
    const prune = captureIo(offline);
    expect(await runCli(['prune', '--keep-last', 'many'], prune)).toBe(2);
    expect(prune.err).toMatch(/--keep-last expects a whole number >= 0, got "many"/);
  });
});

describe('CLI: describe, logs, prune --dry-run, schedules apply --dry-run', () => {
  let env: TestWorker;
  let sdk: RecoveryClient;
  const orgId = uniqueOrgId('clia');
  let older = '';
  let newer = '';
  let backupWorkflowId = '';
  const cli = async (...args: string[]) => {
    const io = captureIo(process.env);
    const code = await runCli([...args, '--task-queue', env.taskQueue], io);
    return { code, out: io.out, err: io.err };
  };

  beforeAll(async () => {
    env = await startTestWorker('cli-additions');
    sdk = await connectRecoveryClient({ config: env.config, taskQueue: env.taskQueue });
    await seedOrganization(env.clients, orgId, { scale: 'small', seed: 'cli-additions' });
    const first = await sdk.startBackup({ orgId, reason: 'cli additions, verified', verify: true });
    backupWorkflowId = first.workflowId;
    older = (await sdk.waitForBackup(first)).backupId;
    newer = (await sdk.waitForBackup(await sdk.startBackup({ orgId, verify: false }))).backupId;
  }, 300_000);
  afterAll(async () => {
    await sdk?.close();
    if (env) {
      await dropSeededOrganization(env.clients, orgId).catch(() => undefined);
      await rm(path.join(env.config.backup.directory, orgId), { recursive: true, force: true });
      await env.shutdown();
    }
  });

  it('describe <backupId> shows artifacts with rows and bytes, versions, key id and the verification', async () => {
    const json = await cli('describe', older, '-o', 'json');
    expect(json.err).toBe('');
    expect(json.code).toBe(0);
    const d = JSON.parse(json.out) as {
      orgId: string;
      manifest: { artifacts: Array<{ file: string; rows: number | null }>; serverVersions: Record<string, string> };
      verification?: { result: string };
    };
    expect(d.orgId).toBe(orgId);
    expect(d.manifest.artifacts.length).toBeGreaterThan(3);
    expect(d.manifest.serverVersions.postgres).toBeDefined();
    expect(d.verification?.result).toBe('passed');
    const human = await cli('describe', older, '--org', orgId);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(new RegExp(`^backup ${older} of ${orgId}\n`));
    expect(human.out).toMatch(/^ {2}verified {4}passed at /m);
    expect(human.out).toMatch(/^store +object +file +rows +bytes +sha256$/m);
    for (const a of d.manifest.artifacts) expect(human.out).toContain(a.file);
    const unverified = await cli('describe', newer);
    expect(unverified.out).toMatch(/^ {2}verified {4}never$/m);
    const missing = await cli('describe', 'no-such-backup', '--org', orgId);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/no complete backup with id "no-such-backup"/);
  });

  it("logs <workflowId> prints the run's history: activities completed, the child verification, the end", async () => {
    const logs = await cli('logs', backupWorkflowId);
    expect(logs.code).toBe(0);
    expect(logs.out).toMatch(/^\S+ +1 {2}started backupOrganization started on task queue /m);
    expect(logs.out).toMatch(/commitBackup completed/);
    expect(logs.out).toMatch(/child verifyBackup \S+ completed/);
    expect(logs.out.trimEnd().split('\n').pop()).toMatch(/end +completed$/);
    const failures = await cli('logs', backupWorkflowId, '--failures', '--json');
    expect(JSON.parse(failures.out)).toMatchObject({ events: [{ kind: 'end', text: 'completed' }] });
  });

  it('prune --dry-run lists what the policy would remove and removes nothing', async () => {
    const dry = await cli(
      'prune',
      '--org',
      orgId,
      '--keep-last',
      '0',
      '--keep-daily',
      '0',
      '--keep-weekly',
      '0',
      '--dry-run',
      '--json',
    );
    expect(dry.code).toBe(0);
    // Never the newest complete backup: the older one is what the policy would remove.
    expect(JSON.parse(dry.out)).toMatchObject({ dryRun: true, organizations: [{ orgId, kept: 1, removed: [older] }] });
    const human = await cli(
      'prune',
      '--org',
      orgId,
      '--keep-last',
      '0',
      '--keep-daily',
      '0',
      '--keep-weekly',
      '0',
      '--dry-run',
    );
    expect(human.out).toMatch(/^DRY RUN — nothing was removed\.\norganization +kept +would remove$/m);
    expect((await sdk.listBackups(orgId)).map((b) => b.backupId).sort()).toEqual([older, newer].sort());
  });

  it('schedules apply --dry-run lists what would be created and creates nothing', async () => {
    const prefix = `dry-${randomUUID().slice(0, 8)}-`;
    const dry = await cli('schedules', 'apply', '--dry-run', '--prefix', prefix, '--json');
    expect(dry.err).toBe('');
    expect(dry.code).toBe(0);
    const report = JSON.parse(dry.out) as { dryRun: boolean; created: string[]; updated: string[]; removed: string[] };
    expect(report.dryRun).toBe(true);
    expect(report.created.length).toBeGreaterThan(3);
    expect(report.created.every((id) => id.startsWith(prefix))).toBe(true);
    for (const id of report.created)
      await expect(env.client.schedule.getHandle(id).describe()).rejects.toBeInstanceOf(ScheduleNotFoundError);
    const human = await cli('schedules', 'apply', '--dry-run', '--prefix', prefix);
    expect(human.out).toMatch(/^DRY RUN — no schedule was changed\.\nwould create /);
  });
});
