import { parseDuration } from '../../client/validation';
import { defineCommand } from '../command';
import { ExitCode } from '../exit-codes';

/** `--max-age`, shared with `preflight`. */
export const MAX_AGE_OPTION = {
  name: 'max-age',
  kind: 'value',
  placeholder: '36h',
  description: "how old an organization's newest verified backup may be (default: the worker's setting)",
} as const;

/** `--max-age 36h` in milliseconds; undefined (the worker's setting) when absent. */
export function maxAgeMs(value: string | undefined): number | undefined {
  return value !== undefined ? parseDuration(value, '--max-age') : undefined;
}

export const staleCommand = defineCommand({
  name: 'stale',
  usage: '',
  summary: 'organizations whose newest verified backup is too old',
  description:
    'Lists organizations whose newest verified backup is older than --max-age. Exits 1 when any organization is stale.',
  options: [MAX_AGE_OPTION],
  async run(ctx, { options }) {
    const staleAfterMs = maxAgeMs(options['max-age']);
    const client = await ctx.connect();
    const report = await client.checkStaleness(staleAfterMs);
    ctx.print(
      report.stale.length
        ? report.stale
            .map(
              (s) =>
                `${s.orgId}: ${s.newestVerifiedBackupId ? `newest verified ${s.newestVerifiedBackupId} (${Math.round((s.ageMs ?? 0) / 3_600_000)} h)` : 'no verified backup'}`,
            )
            .join('\n')
        : `all ${report.organizations} organization(s) have a verified backup younger than ${Math.round(report.staleAfterMs / 3_600_000)} h`,
      { ok: report.stale.length === 0, ...report },
    );
    return report.stale.length === 0 ? ExitCode.Ok : ExitCode.OperationFailed;
  },
});
