import { revisionNumber } from '../arguments';
import { defineCommand } from '../command';
import { ExitCode, UsageError } from '../exit-codes';
import { NAMESPACE_OPTION } from './rollback';

export const helmValuesCommand = defineCommand({
  name: 'helm-values',
  usage: 'record | diff <rev> <rev>',
  summary: 'keep Helm values per revision (secrets redacted), or show what changed',
  description:
    'record: stores the values of every revision of the release not kept yet, secrets redacted, and commits them when HELM_VALUES_GIT_DIR is set. diff <rev> <rev>: what changed between two kept revisions.',
  options: [
    {
      name: 'release',
      kind: 'value',
      placeholder: 'eloquent',
      description: "the Helm release (default: the worker's)",
    },
    NAMESPACE_OPTION,
  ],
  async run(ctx, { positionals, options }) {
    const [action, ...rest] = positionals;
    const target = {
      ...(options.release !== undefined ? { release: options.release } : {}),
      ...(options.namespace !== undefined ? { namespace: options.namespace } : {}),
    };
    if (action === 'record') {
      if (rest.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(rest[0])}`);
      const client = await ctx.connect();
      const result = await client.recordHelmValues(target);
      ctx.print(
        `helm release ${result.namespace}/${result.release}: revisions ${result.revisions.join(', ')}; stored now: ${result.stored.join(', ') || '-'}${result.committed ? `; committed now: ${result.committed.join(', ') || '-'}` : ''}`,
        result,
      );
      return ExitCode.Ok;
    }
    if (action === 'diff') {
      if (rest.length !== 2) throw new UsageError('helm-values diff expects two revision numbers: diff <rev> <rev>');
      const from = revisionNumber(rest[0], 'the first revision') ?? 0;
      const to = revisionNumber(rest[1], 'the second revision') ?? 0;
      const client = await ctx.connect();
      const result = await client.diffHelmValues({ ...target, from, to });
      const lines = result.changes.map((c) =>
        c.change === 'added'
          ? `+ ${c.path}: ${c.to}`
          : c.change === 'removed'
            ? `- ${c.path}: ${c.from}`
            : `~ ${c.path}: ${c.from} → ${c.to}`,
      );
      ctx.print(
        [
          `helm release ${result.namespace}/${result.release}, revision ${from} → ${to}:`,
          ...(lines.length ? lines : ['  (no change)']),
        ].join('\n'),
        result,
      );
      return ExitCode.Ok;
    }
    throw new UsageError(`helm-values expects "record" or "diff <rev> <rev>", got ${JSON.stringify(action ?? '')}`);
  },
});
