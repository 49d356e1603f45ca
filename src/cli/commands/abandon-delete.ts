import { BY_OPTION, one } from '../arguments';
import { defineCommand } from '../command';
import { confirm } from '../confirmation';
import { decideParked } from './retry-delete';

export const abandonDeleteCommand = defineCommand({
  name: 'abandon-delete',
  usage: '<org>',
  summary: 'stop a deletion parked on a store that stays down, leaving what is not yet purged',
  description: 'A parked deletion: stop it, leaving what is not yet purged (recorded in the certificate).',
  options: [
    {
      name: 'reason',
      kind: 'value',
      placeholder: '<text>',
      required: true,
      description: 'why, recorded in the certificate',
    },
    BY_OPTION,
    {
      name: 'confirm',
      kind: 'value',
      placeholder: '<org>',
      description: 'repeat the organization id (asked on a terminal otherwise)',
    },
  ],
  async run(ctx, { positionals, options }) {
    const orgId = one(positionals, 'organization id');
    await confirm(
      ctx,
      options.confirm,
      orgId,
      `this ABANDONS the deletion of ${orgId}, leaving what is not yet purged`,
    );
    return decideParked(ctx, orgId, 'abandon', options);
  },
});
