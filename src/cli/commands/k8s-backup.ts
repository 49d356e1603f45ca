import { noArguments } from '../arguments';
import { defineCommand } from '../command';
import { finishStarted, STARTED_RUN_OPTIONS, startedRunSettings } from '../started-run';

export const k8sBackupCommand = defineCommand({
  name: 'k8s-backup',
  usage: '',
  summary: 'Velero backup of the cluster state',
  options: [
    {
      name: 'namespaces',
      kind: 'value',
      placeholder: 'eloquent,other',
      description: "the namespaces to back up, comma-separated (default: the worker's, eloquent)",
    },
    {
      name: 'ttl',
      kind: 'value',
      placeholder: '720h',
      description: 'how long Velero keeps the backup, as a Go duration (default 720h)',
    },
    ...STARTED_RUN_OPTIONS,
  ],
  async run(ctx, { positionals, options }) {
    noArguments(positionals);
    const run = startedRunSettings(options);
    const client = await ctx.connect();
    const includedNamespaces = options.namespaces?.split(',').map((n) => n.trim());
    const started = await client.startKubernetesBackup(
      { ...(includedNamespaces ? { includedNamespaces } : {}), ...(options.ttl ? { ttl: options.ttl } : {}) },
      run.request,
    );
    return finishStarted(ctx, client, started.workflowId, run);
  },
});
