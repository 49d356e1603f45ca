import { one, revisionNumber } from '../arguments';
import { defineCommand } from '../command';
import { confirm } from '../confirmation';
import { finishStarted, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';

/** `--namespace`, shared with `rollback-platform`. */
export const NAMESPACE_OPTION = {
  name: 'namespace',
  kind: 'value',
  placeholder: 'eloquent',
  description: "the Kubernetes namespace (default: the worker's, eloquent)",
} as const;

export const rollbackCommand = defineCommand({
  name: 'rollback',
  usage: '<deployment>',
  summary: 'kubectl rollout undo, as a workflow',
  description:
    'Rolls a Deployment back to its previous revision (or --to-revision N), as a workflow. Asks on a terminal, requires --confirm <deployment> otherwise.',
  options: [
    {
      name: 'to-revision',
      kind: 'value',
      placeholder: 'N',
      description: 'the revision to go back to, as the deployment history lists it (default: the previous one)',
    },
    NAMESPACE_OPTION,
    { name: 'confirm', kind: 'value', placeholder: '<deployment>', description: 'repeat the deployment name' },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    const run = startedRunSettings(options);
    const client = await ctx.connect();
    const toRevision = revisionNumber(options['to-revision'], '--to-revision');
    const service = one(positionals, 'deployment name');
    await confirm(
      ctx,
      options.confirm,
      service,
      `this rolls deployment ${service} back${toRevision ? ` to revision ${toRevision}` : ''}`,
    );
    const started = await client.startDeploymentRollback(
      {
        service,
        ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
        ...(toRevision ? { toRevision } : {}),
      },
      run.request,
    );
    return finishStarted(ctx, client, started.workflowId, run);
  },
});
