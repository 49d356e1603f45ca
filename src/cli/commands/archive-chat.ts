import { parseDuration } from '../../client/validation';
import { defineCommand } from '../command';
import { finishStarted, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';

export const archiveChatCommand = defineCommand({
  name: 'archive-chat',
  usage: '[<org>]',
  summary: 'archive old chat messages into ClickHouse, of one organization or of every one',
  description:
    "Archives chat messages older than --older-than into each organization's ClickHouse chat archive, each message exactly once; without <org>, every organization.",
  options: [
    {
      name: 'older-than',
      kind: 'value',
      placeholder: '9d',
      description: 'only messages at least this old (default 9d, a day before the chat stream expires them)',
    },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    const orgId = positionals[0];
    const run = startedRunSettings(options);
    const olderThanMs =
      options['older-than'] !== undefined ? parseDuration(options['older-than'], '--older-than') : undefined;
    const client = await ctx.connect();
    const started = await client.startChatArchive(
      { ...(orgId ? { orgId } : {}), ...(olderThanMs !== undefined ? { olderThanMs } : {}) },
      run.request,
    );
    return finishStarted(ctx, client, started.workflowId, run);
  },
});
