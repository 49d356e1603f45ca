/**
 * Which backups a retention policy keeps. Pure and deterministic, so it is tested on its own and the
 * same list always gives the same answer.
 */

/** Keep the newest `keepLast`, plus the newest backup of each of the last `keepDaily` days and `keepWeekly` ISO weeks. */
export interface RetentionPolicy {
  /** @default 7 */
  keepLast: number;
  /** @default 7 */
  keepDaily: number;
  /** @default 4 */
  keepWeekly: number;
}

export const DEFAULT_RETENTION: RetentionPolicy = { keepLast: 7, keepDaily: 7, keepWeekly: 4 };

export interface RetentionCandidate {
  backupId: string;
  /** ISO-8601 start time. */
  startedAt: string;
  complete: boolean;
  /** Held by an unfinished operation (e.g. the pre-deletion backup of a running deletion). */
  held: boolean;
}

export interface RetentionDecision {
  keep: Array<{ backupId: string; reasons: string[] }>;
  remove: string[];
}

/** `2026-11-30` (UTC day). */
function dayOf(iso: string): string {
  return iso.slice(0, 10);
}

/** `2026-W48` (ISO week, UTC). */
function isoWeekOf(iso: string): string {
  const date = new Date(iso);
  const day = (date.getUTCDay() + 6) % 7; // Monday = 0
  const thursday = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), date.getUTCDate() - day + 3));
  const firstThursday = new Date(Date.UTC(thursday.getUTCFullYear(), 0, 4));
  const week =
    1 +
    Math.round(
      (thursday.getTime() - firstThursday.getTime()) / (7 * 86_400_000) -
        ((firstThursday.getUTCDay() + 6) % 7) / 7 +
        3 / 7,
    );
  return `${thursday.getUTCFullYear()}-W${String(week).padStart(2, '0')}`;
}

/**
 * Decides what to keep. Incomplete backups are never counted as kept copies and are removed only
 * when older than `incompleteGraceMs` before `now` (a younger one may be a backup still running).
 * The newest complete backup and every held backup are always kept.
 */
export function decideRetention(
  candidates: readonly RetentionCandidate[],
  policy: RetentionPolicy,
  now: Date,
  incompleteGraceMs = 24 * 3_600_000,
): RetentionDecision {
  const reasons = new Map<string, string[]>();
  const keep = (id: string, reason: string) => reasons.set(id, [...(reasons.get(id) ?? []), reason]);
  const complete = candidates
    .filter((c) => c.complete)
    .sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));

  const newest = complete[0];
  if (newest) keep(newest.backupId, 'newest complete backup');
  complete.slice(0, policy.keepLast).forEach((c, i) => keep(c.backupId, `last ${i + 1}/${policy.keepLast}`));
  const days = new Set<string>();
  for (const c of complete) {
    if (days.size >= policy.keepDaily) break;
    if (!days.has(dayOf(c.startedAt))) {
      days.add(dayOf(c.startedAt));
      keep(c.backupId, `daily ${dayOf(c.startedAt)}`);
    }
  }
  const weeks = new Set<string>();
  for (const c of complete) {
    if (weeks.size >= policy.keepWeekly) break;
    if (!weeks.has(isoWeekOf(c.startedAt))) {
      weeks.add(isoWeekOf(c.startedAt));
      keep(c.backupId, `weekly ${isoWeekOf(c.startedAt)}`);
    }
  }
  for (const c of candidates) {
    if (c.held) keep(c.backupId, 'held by an unfinished operation');
    else if (!c.complete && now.getTime() - new Date(c.startedAt).getTime() < incompleteGraceMs)
      keep(c.backupId, 'incomplete, may still be running');
  }
  return {
    keep: [...reasons.entries()].map(([backupId, why]) => ({ backupId, reasons: why })),
    remove: candidates.filter((c) => !reasons.has(c.backupId)).map((c) => c.backupId),
  };
}
