/**
 * The one duration format of eloquent-recovery, the same from the Temporal UI, the SDK, the CLI and
 * the schedule file: one or more `<integer><unit>` parts, units `ms`, `s`, `m`, `h`, `d`, `w`
 * (`7d`, `1h30m`, `1w`, `500ms`, `0s`). Pure and deterministic, so workflow code uses it too.
 */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(\d+(ms|s|m|h|d|w))+$/;
const PART = /(\d+)(ms|s|m|h|d|w)/g;

/** Milliseconds of a duration, or the rule it breaks (for callers with their own error types). */
export function durationMsOrProblem(text: unknown): number | string {
  if (typeof text !== 'string' || !DURATION.test(text.trim())) {
    return `expected a duration such as "7d", "12h", "10s", "1h30m", "1w" or "0s"; got ${JSON.stringify(text)}`;
  }
  let total = 0;
  for (const match of text.trim().matchAll(PART)) total += Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 0);
  if (!Number.isSafeInteger(total)) return `${JSON.stringify(text)} is too long`;
  return total;
}

/**
 * Parses a duration such as `7d`, `10s`, `1h30m`, `500ms` or `0s` into milliseconds.
 * @param field the input field, named in the error.
 * @throws Error naming the field when the text is not a duration.
 */
export function parseDurationMs(text: unknown, field: string): number {
  const parsed = durationMsOrProblem(text);
  if (typeof parsed === 'string') throw new Error(`${field}: ${parsed}`);
  return parsed;
}
