import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { runCli } from '../src/cli/main';
import { captureIo } from './support/cli-io';
import { applySchedules, listManagedSchedules } from '../src/schedules/apply-schedules';
import { loadScheduleFile, scheduleFileSchema } from '../src/schedules/schedule-file';
import { startTestWorker, type TestWorker } from './support/test-worker';

describe('schedules as code', () => {
  let env: TestWorker;
  let dir: string;
  const prefix = `eloquent-test-${Date.now().toString(36)}-`;

  beforeAll(async () => {
    env = await startTestWorker('schedules');
    dir = await mkdtemp(path.join(tmpdir(), 'schedules-'));
  });
  afterAll(async () => {
    if (env) {
      for (const id of await listManagedSchedules(env.client, prefix))
        await env.client.schedule
          .getHandle(id)
          .delete()
          .catch(() => undefined);
      for (const id of ['staleness', 'prune', 'drill'])
        await env.client.schedule
          .getHandle(`${prefix}${id}`)
          .delete()
          .catch(() => undefined);
      await env.shutdown();
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('the repository schedule file mirrors the runbook and is valid', async () => {
    const file = await loadScheduleFile(path.join(__dirname, '..', 'schedules', 'schedules.json'));
    const types = file.schedules.map((s) => `${s.workflowType}:${JSON.stringify(s.args)}`);
    expect(types).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^backupPlatform:.*"postgres"/),
        expect.stringMatching(/^backupPlatform:.*"clickhouse"/),
        expect.stringMatching(/^archiveChat:/),
        expect.stringMatching(/^pruneBackups:/),
        expect.stringMatching(/^backupKubernetes:/),
        expect.stringMatching(/^restoreDrill:/),
      ]),
    );
  });

  it('apply twice gives the same set and the second reports no change; a removed entry is deleted', async () => {
    const file = path.join(dir, 'schedules.json');
    const entries = [
      {
        id: 'staleness',
        description: 'test staleness',
        workflowType: 'backupStaleness',
        args: [{}],
        cron: '0 0 1 1 *',
      },
      { id: 'prune', description: 'test prune', workflowType: 'pruneBackups', args: [{ dryRun: true }], every: '30d' },
    ];
    await writeFile(file, JSON.stringify({ schedules: entries }));
    const first = captureIo();
    expect(
      await runCli(
        ['schedules', 'apply', '--file', file, '--prefix', prefix, '--task-queue', env.taskQueue, '--json'],
        first,
      ),
    ).toBe(0);
    expect(JSON.parse(first.out)).toMatchObject({ created: [`${prefix}staleness`, `${prefix}prune`], noChange: false });

    const second = captureIo();
    expect(
      await runCli(['schedules', 'apply', '--file', file, '--prefix', prefix, '--task-queue', env.taskQueue], second),
    ).toBe(0);
    expect(second.out).toMatch(/no change/);
    expect(second.out).toMatch(new RegExp(`unchanged ${prefix}staleness`));

    const described = await env.client.schedule.getHandle(`${prefix}staleness`).describe();
    expect(described.policies.overlap).toBe('SKIP');

    // An edited entry is updated; a dropped one is removed (once listing has caught up).
    const edited = scheduleFileSchema.parse({ schedules: [{ ...entries[0], cron: '0 0 2 1 *' }] });
    let report = await applySchedules(edited, { client: env.client, taskQueue: env.taskQueue, prefix });
    expect(report.updated).toEqual([`${prefix}staleness`]);
    for (let i = 0; i < 40 && !report.removed.includes(`${prefix}prune`); i++) {
      await new Promise((r) => setTimeout(r, 500));
      report = await applySchedules(edited, { client: env.client, taskQueue: env.taskQueue, prefix });
    }
    expect(report.removed).toContain(`${prefix}prune`);
  });

  it('a triggered schedule runs its workflow to completion', async () => {
    const file = scheduleFileSchema.parse({
      schedules: [
        {
          id: 'drill',
          description: 'test trigger',
          workflowType: 'backupStaleness',
          args: [{ staleAfterMs: 3600000 }],
          cron: '0 0 1 1 *',
        },
      ],
    });
    await applySchedules(file, { client: env.client, taskQueue: env.taskQueue, prefix: `${prefix}x-` });
    const io = captureIo();
    expect(
      await runCli(['schedules', 'trigger', 'drill', '--prefix', `${prefix}x-`, '--task-queue', env.taskQueue], io),
    ).toBe(0);
    const handle = env.client.schedule.getHandle(`${prefix}x-drill`);
    let workflowId: string | undefined;
    for (let i = 0; i < 60 && !workflowId; i++) {
      workflowId = (await handle.describe()).info.recentActions[0]?.action.workflow.workflowId;
      if (!workflowId) await new Promise((r) => setTimeout(r, 250));
    }
    expect(workflowId).toMatch(new RegExp(`^${prefix}x-drill`));
    const result = (await env.client.workflow.getHandle(workflowId ?? '').result()) as { staleAfterMs: number };
    expect(result.staleAfterMs).toBe(3600000);
    await handle.delete();
  });
});
