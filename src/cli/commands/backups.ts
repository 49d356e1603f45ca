import { formatBytes } from '../../platform/describe';
import { one } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode } from '../exit-codes';

export const backupsCommand = defineCommand({
  name: 'backups',
  usage: '<org>',
  summary: "an organization's backups, newest first",
  options: [],
  async run(ctx, { positionals }) {
    const orgId = one(positionals, 'organization id');
    const client = await ctx.connect();
    const backups = await client.listBackups(orgId);
    ctx.print(
      backups.length
        ? backups
            .map(
              (b) =>
                `${b.backupId}  ${b.status.padEnd(10)} ${formatBytes(b.storedBytes).padStart(10)}  ${b.verification ? `verified ${b.verification.result} ${b.verification.verifiedAt}` : 'not verified'}`,
            )
            .join('\n')
        : `no backups of ${orgId}`,
      { ok: true, orgId, backups },
    );
    return ExitCode.Ok;
  },
});
