import { noArguments, revisionNumber } from '../arguments';
import { defineCommand } from '../command';
import { confirm } from '../confirmation';
import { finishStarted, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';
import { NAMESPACE_OPTION } from './rollback';

export const rollbackPlatformCommand = defineCommand({
  name: 'rollback-platform',
  usage: '',
  summary: 'helm rollback, as a workflow',
  description:
    'Rolls the Helm release back to its previous revision (or --revision N), as a workflow. Asks on a terminal, requires --confirm <release> otherwise.',
  options: [
    {
      name: 'revision',
      kind: 'value',
      placeholder: 'N',
      description: 'the release revision to go back to, as helm history lists it (default: the previous one)',
    },
    {
      name: 'release',
      kind: 'value',
      placeholder: 'eloquent',
      description: "the Helm release (default: the worker's, eloquent)",
    },
    NAMESPACE_OPTION,
    { name: 'confirm', kind: 'value', placeholder: '<release>', description: 'repeat the release name' },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    noArguments(positionals);
    const run = startedRunSettings(options);
    const client = await ctx.connect();
    const revision = revisionNumber(options.revision, '--revision');
    const release = options.release ?? 'eloquent';
    await confirm(
      ctx,
      options.confirm,
      release,
      `this rolls the Helm release ${release} back${revision ? ` to revision ${revision}` : ''}`,
    );
    const started = await client.startPlatformRollback(
      {
        ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
        ...(options.release ? { release: options.release } : {}),
        ...(revision ? { revision } : {}),
      },
      run.request,
    );
    return finishStarted(ctx, client, started.workflowId, run);
  },
});
