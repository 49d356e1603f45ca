import type { DeletionPlan, PlannedObject, RestorePlan } from '../contracts/plans';
import { formatBytes } from '../platform/describe';

/** Rows under a header, each column as wide as its widest cell; numbers right-aligned. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = header.map(
    (_, i) => rows.length > 0 && rows.every((r) => /^[\d.,]+( [KMGT]?i?B)?$|^-$/.test(r[i] ?? '')),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function objectRows(action: string, objects: readonly PlannedObject[]): string[][] {
  return objects.map((o) => [
    action,
    o.store,
    o.object,
    String(o.rows),
    o.bytes !== undefined ? formatBytes(o.bytes) : '-',
  ]);
}

function refusalLines(refusals: readonly string[]): string {
  return refusals.length === 0
    ? 'A real run would proceed: nothing refuses it now.'
    : `A real run would be REFUSED:\n${refusals.map((r) => `  - ${r}`).join('\n')}`;
}

/** The restore plan as the CLI prints it: names, then every object created or replaced. */
export function restorePlanText(plan: RestorePlan): string {
  const clone = plan.sourceOrgId !== plan.targetOrgId;
  return [
    `DRY RUN — nothing was changed. Restore of backup ${plan.backupId} (${plan.sourceOrgId}) into ${plan.targetOrgId}, mode ${plan.mode}${clone ? `, a clone: id ${plan.idMapping.from} → ${plan.idMapping.to}` : ''}`,
    plan.safetyBackup ? `A safety backup of ${plan.targetOrgId} is taken first.` : '',
    plan.deletionRecord
      ? `${plan.targetOrgId} has a deletion record (${plan.deletionRecord.workflowId}, by ${plan.deletionRecord.requestedBy}: ${plan.deletionRecord.reason}).`
      : '',
    '',
    table(
      ['store', 'kind', 'from', 'to'],
      plan.names.map((n) => [n.store, n.kind, n.from, n.to]),
    ),
    '',
    table(
      ['action', 'store', 'object', 'rows', 'bytes'],
      [...objectRows('replace', plan.replace), ...objectRows('create', plan.create)],
    ),
    '',
    `create ${plan.totals.createObjects} objects, ${plan.totals.createRows} rows from ${plan.artifacts.length} artifacts (${formatBytes(plan.totals.readBytes)} read); replace ${plan.totals.replaceObjects} objects, ${plan.totals.replaceRows} rows`,
    refusalLines(plan.refusals),
  ]
    .filter((line, i, all) => line !== '' || (i > 0 && all[i - 1] !== ''))
    .join('\n');
}

/** The deletion plan as the CLI prints it: each purge step with what it removes. */
export function deletionPlanText(plan: DeletionPlan): string {
  return [
    `DRY RUN — nothing was changed. Deletion of ${plan.orgId} (${plan.workflowId}):`,
    plan.backup.skipped
      ? `  no backup first (skipped: ${plan.backup.reason})`
      : `  first a verified backup of ${plan.backup.stores.join(', ')}`,
    `  status ${plan.status ?? '(no organization row)'} → deleting; ${plan.sessionsRevoked} session key(s) revoked; grace period ${plan.gracePeriod}`,
    '  then, after the point of no return:',
    '',
    table(
      ['step', 'store', 'object', 'rows', 'bytes'],
      plan.purge.flatMap((p) =>
        p.objects.length > 0
          ? p.objects.map((o) => [
              p.step,
              o.store,
              o.object,
              String(o.rows),
              o.bytes !== undefined ? formatBytes(o.bytes) : '-',
            ])
          : [[p.step, '-', '(nothing)', '0', '-']],
      ),
    ),
    '',
    ...plan.purge.map(
      (p) =>
        `${p.step.padEnd(21)} removes ${Object.entries(p.removed)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
    ),
    `in all ${plan.totals.objects} objects, ${plan.totals.rows} rows, ${formatBytes(plan.totals.bytes)}`,
    refusalLines(plan.refusals),
  ].join('\n');
}
