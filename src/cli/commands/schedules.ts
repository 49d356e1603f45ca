import * as path from 'node:path';
import { applySchedules, DEFAULT_SCHEDULE_PREFIX, describeManagedSchedules } from '../../schedules/apply-schedules';
import { loadScheduleFile } from '../../schedules/schedule-file';
import { defineCommand } from '../command';
import { ExitCode, UsageError } from '../exit-codes';

export const schedulesCommand = defineCommand({
  name: 'schedules',
  usage: 'apply|list|pause <id>|unpause <id>|trigger <id>',
  summary: "make Temporal's schedules match the schedule file; list, pause, unpause or trigger one",
  description:
    'apply makes Temporal match the file (a second apply reports "no change"); ids are given without the prefix.',
  options: [
    {
      name: 'dry-run',
      kind: 'flag',
      description: 'with apply: list what would be created, updated and removed, change nothing',
    },
    {
      name: 'file',
      kind: 'value',
      placeholder: 'schedules/schedules.json',
      description: 'the schedule file that apply reads (default schedules/schedules.json)',
    },
    {
      name: 'prefix',
      kind: 'value',
      placeholder: DEFAULT_SCHEDULE_PREFIX,
      description: `the prefix of the schedule ids this CLI manages (default ${DEFAULT_SCHEDULE_PREFIX})`,
    },
  ],
  async run(ctx, { positionals, options }) {
    const [action, id, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
    if (options['dry-run'] && action !== 'apply')
      throw new UsageError(`--dry-run is an option of schedules apply, not of schedules ${action ?? ''}`);
    const dryRun = options['dry-run'] ?? false;
    const prefix = options.prefix ?? DEFAULT_SCHEDULE_PREFIX;
    const client = await ctx.connect();
    const scheduleId = (raw: string | undefined) => {
      if (raw === undefined) throw new UsageError(`schedules ${action ?? ''} needs a schedule id`);
      return raw.startsWith(prefix) ? raw : `${prefix}${raw}`;
    };
    switch (action) {
      case 'apply': {
        const file = await loadScheduleFile(path.resolve(options.file ?? path.join('schedules', 'schedules.json')));
        const report = await applySchedules(file, {
          client: client.temporal,
          taskQueue: client.taskQueue,
          prefix,
          dryRun,
        });
        const would = dryRun ? 'would be ' : '';
        const lines = [
          ...(dryRun ? ['DRY RUN — no schedule was changed.'] : []),
          ...report.created.map((s) => `${dryRun ? 'would create' : 'created  '} ${s}`),
          ...report.updated.map((s) => `${dryRun ? 'would update' : 'updated  '} ${s}`),
          ...report.removed.map((s) => `${dryRun ? 'would remove' : 'removed  '} ${s}`),
          ...report.unchanged.map((s) => `${dryRun ? 'unchanged   ' : 'unchanged'} ${s}`),
          report.noChange
            ? 'no change: Temporal already matches the file'
            : `${report.created.length} ${would}created, ${report.updated.length} ${would}updated, ${report.removed.length} ${would}removed`,
        ];
        ctx.print(lines.join('\n'), { ok: true, dryRun, ...report });
        return ExitCode.Ok;
      }
      case 'list': {
        const listings = await describeManagedSchedules(client.temporal, prefix);
        ctx.print(
          listings
            .map(
              (l) =>
                `${l.scheduleId.padEnd(36)} ${l.workflowType.padEnd(18)} ${l.spec.padEnd(14)} ${l.paused ? 'PAUSED ' : 'active '} next ${l.nextRuns[0] ?? '-'}`,
            )
            .join('\n') || 'no schedules',
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
        throw new UsageError(
          `schedules: expected apply, list, pause <id>, unpause <id> or trigger <id>; got ${JSON.stringify(action)}`,
        );
    }
  },
});
