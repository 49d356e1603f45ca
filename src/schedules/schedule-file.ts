import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { durationMsOrProblem } from '../contracts/duration';

/** Schedule ids: what follows the set's prefix (`eloquent-`). */
const scheduleIdSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'expected 1-63 lower-case letters, digits and "-"' });

/** Five-field cron (minute hour day-of-month month day-of-week), as Temporal reads it, in UTC. */
const cronSchema = z
  .string()
  .regex(/^\s*\S+(\s+\S+){4}\s*$/, { message: 'expected a five-field cron expression such as "0 2 * * *"' });

const everySchema = z.string().refine(
  (text) => {
    const ms = durationMsOrProblem(text);
    return typeof ms === 'number' && ms >= 1000;
  },
  { message: 'expected an interval of at least 1s such as 15m, 1h30m, 7d or 1w' },
);

export const scheduleEntrySchema = z
  .object({
    id: scheduleIdSchema,
    description: z.string().min(1),
    /** Workflow type name registered by the worker. */
    workflowType: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]*$/, { message: 'expected a workflow type name such as "backupPlatform"' }),
    /** Arguments of the workflow, as JSON. */
    args: z.array(z.unknown()).default([]),
    cron: cronSchema.optional(),
    every: everySchema.optional(),
    /** Created paused (e.g. a schedule whose workflow is not deployed yet). @default false */
    paused: z.boolean().default(false),
  })
  .strict()
  .refine((e) => (e.cron === undefined) !== (e.every === undefined), {
    message: 'give exactly one of "cron" and "every"',
  });

export type ScheduleEntry = z.infer<typeof scheduleEntrySchema>;

export const scheduleFileSchema = z
  .object({
    $comment: z.string().optional(),
    schedules: z.array(scheduleEntrySchema),
  })
  .strict()
  .refine((f) => new Set(f.schedules.map((s) => s.id)).size === f.schedules.length, {
    message: 'schedule ids must be unique',
  });

export type ScheduleFile = z.infer<typeof scheduleFileSchema>;

/** Thrown when the schedule file is unreadable or invalid; lists every problem with its JSON path. */
export class ScheduleFileError extends Error {
  override readonly name = 'ScheduleFileError';
}

/** Reads and validates a schedule file. @throws ScheduleFileError */
export async function loadScheduleFile(path: string): Promise<ScheduleFile> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new ScheduleFileError(
      `cannot read schedule file ${path}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const parsed = scheduleFileSchema.safeParse(json);
  if (!parsed.success) {
    throw new ScheduleFileError(
      `schedule file ${path} is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/** JSON with object keys sorted, so equal content always gives equal text. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * A hash of everything apply sets on a schedule (the normalized entry and the task queue). Stored
 * in the schedule's action memo; equal hashes mean the schedule already matches the file.
 * Cron whitespace is normalized, so reformatting the file changes nothing.
 */
export function scheduleSpecHash(entry: ScheduleEntry, taskQueue: string): string {
  const normalized = { ...entry, cron: entry.cron?.trim().split(/\s+/).join(' '), taskQueue };
  return createHash('sha256').update(canonicalJson(normalized)).digest('hex').slice(0, 16);
}
