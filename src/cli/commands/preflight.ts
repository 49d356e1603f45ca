import { defineCommand } from '../command';
import { noArguments } from '../arguments';
import { ExitCode } from '../exit-codes';
import { MAX_AGE_OPTION, maxAgeMs } from './stale';

export const preflightCommand = defineCommand({
  name: 'preflight',
  usage: '',
  summary: 'probe every store and list organizations with stale backups',
  description:
    'Probes PostgreSQL, ClickHouse, NATS and Redis through the worker, then lists organizations whose newest verified backup is older than --max-age.',
  options: [MAX_AGE_OPTION],
  async run(ctx, { positionals, options }) {
    noArguments(positionals);
    const staleAfterMs = maxAgeMs(options['max-age']);
    const client = await ctx.connect();
    const report = await client.preflight();
    const staleness = await client.checkStaleness(staleAfterMs);
    const lines = report.stores.map(
      (s) => `  ${s.store.padEnd(10)} ${s.address.padEnd(22)} ${s.version.padEnd(14)} ${s.latencyMs} ms`,
    );
    const stale = staleness.stale.map(
      (s) =>
        `  ${s.orgId}: ${s.newestVerifiedBackupId ? `newest verified backup ${s.newestVerifiedBackupId} is ${Math.round((s.ageMs ?? 0) / 3_600_000)} h old` : 'no verified backup'}`,
    );
    ctx.print(
      [
        `every store answered:`,
        ...lines,
        `${staleness.stale.length} of ${staleness.organizations} organization(s) without a verified backup in ${Math.round(staleness.staleAfterMs / 3_600_000)} h${stale.length ? ':' : ''}`,
        ...stale,
      ].join('\n'),
      { ok: true, preflight: report, staleness },
    );
    return ExitCode.Ok;
  },
});
