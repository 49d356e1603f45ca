import { formatBytes } from '../../platform/describe';
import { one } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode } from '../exit-codes';
import { table } from '../plan-table';

export const describeCommand = defineCommand({
  name: 'describe',
  usage: '<backupId>',
  summary: 'one backup: artifacts, rows, bytes, versions, key id and verification',
  description:
    "Reads the backup's manifest and verification report from the worker's store: every artifact with its bytes, rows and SHA-256, the server and pg_dump versions, the key id and the verification result.",
  options: [
    {
      name: 'org',
      kind: 'value',
      placeholder: '<org>',
      description: "the backup's organization (found by searching the store when absent)",
    },
  ],
  async run(ctx, { positionals, options }) {
    const backupId = one(positionals, 'backup id');
    const client = await ctx.connect();
    const d = await client.describeBackup(backupId, options.org);
    const m = d.manifest;
    const v = d.verification;
    const versions = Object.entries(m.serverVersions)
      .filter(([, value]) => value !== undefined)
      .map(([k, value]) => `${k} ${String(value)}`)
      .join(', ');
    ctx.print(
      [
        `backup ${m.backupId} of ${m.orgId}`,
        `  reason      ${m.reason}`,
        `  taken       ${m.startedAt} → ${m.finishedAt} by ${m.workflowId}`,
        `  stores      ${m.stores.join(', ')}`,
        `  versions    ${versions || '-'}`,
        `  key id      ${m.keyId ?? 'none (not encrypted)'}`,
        `  fingerprint ${m.fingerprint.objects.length} objects, ${m.fingerprint.objects.reduce((n, o) => n + o.rows, 0)} rows`,
        `  verified    ${v ? `${v.result} at ${v.verifiedAt} by ${v.workflowId}${v.problems.length ? `: ${v.problems.join('; ')}` : ''}` : 'never'}`,
        '',
        table(
          ['store', 'object', 'file', 'rows', 'bytes', 'sha256'],
          m.artifacts.map((a) => [
            a.store,
            a.object,
            a.file,
            a.rows === null ? '-' : String(a.rows),
            formatBytes(a.bytes),
            a.sha256.slice(0, 16),
          ]),
        ),
        `${m.artifacts.length} artifacts, ${formatBytes(m.artifacts.reduce((n, a) => n + a.bytes, 0))} stored`,
      ].join('\n'),
      { ok: true, ...d },
    );
    return ExitCode.Ok;
  },
});
