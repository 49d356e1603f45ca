import type { LogLevel, LogMetadata } from '@temporalio/common';

const LEVEL_ORDER: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

/** The levels `LOG_LEVEL` accepts, lowest first. */
export const LOG_LEVELS = Object.keys(LEVEL_ORDER) as LogLevel[];

/** How many causes of one error are written before the chain is cut (a cycle or a runaway chain). */
const MAX_CAUSE_DEPTH = 8;

/** An error as a log line carries it: what `JSON.stringify` alone drops (message, stack, cause). */
export interface SerializedError {
  /** The error's class (`name`); a Temporal ApplicationFailure keeps its own `type` beside it. */
  name: string;
  message: string;
  stack?: string;
  /** Own properties such as `code`, `errno`, `address`, Temporal's `failure` fields. */
  [property: string]: unknown;
  cause?: SerializedError | unknown;
}

/**
 * An `Error` as plain JSON: its class (`name`), message and stack, its own enumerable properties
 * (`code`, `address`…), and its cause chain, each cause serialized the same way. Anything that is
 * not an Error is returned as it is.
 */
export function serializeError(value: unknown, depth = 0): unknown {
  if (!(value instanceof Error)) return value;
  const serialized: SerializedError = { name: value.name, message: value.message };
  if (value.stack) serialized.stack = value.stack;
  for (const [key, property] of Object.entries(value)) {
    if (key === 'cause' || key === 'message' || key === 'stack') continue;
    serialized[key] = property instanceof Error ? serializeError(property, depth + 1) : property;
  }
  if (value.cause !== undefined) {
    serialized.cause = depth + 1 >= MAX_CAUSE_DEPTH ? '[cause chain cut]' : serializeError(value.cause, depth + 1);
  }
  if (value instanceof AggregateError)
    serialized.errors = value.errors.map((inner) => serializeError(inner, depth + 1));
  return serialized;
}

/** Metadata with every Error value (at the top level: `error`, `failure`, …) serialized. */
function withErrorsSerialized(meta: LogMetadata | undefined): LogMetadata | undefined {
  if (!meta) return meta;
  const out: LogMetadata = {};
  for (const [key, value] of Object.entries(meta)) out[key] = serializeError(value);
  return out;
}

/**
 * One JSON object per line on stderr: easy to grep by hand, easy to ship to a log store. Errors in
 * the metadata keep their message, type, stack and causes (plain `JSON.stringify` gives `{}`).
 */
export class JsonLineLogger {
  constructor(
    private readonly minimum: LogLevel = 'INFO',
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
  ) {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[this.minimum]) return;
    this.write(
      `${JSON.stringify({ time: new Date().toISOString(), level, message, ...withErrorsSerialized(meta) })}\n`,
    );
  }
  trace(message: string, meta?: LogMetadata): void {
    this.log('TRACE', message, meta);
  }
  debug(message: string, meta?: LogMetadata): void {
    this.log('DEBUG', message, meta);
  }
  info(message: string, meta?: LogMetadata): void {
    this.log('INFO', message, meta);
  }
  warn(message: string, meta?: LogMetadata): void {
    this.log('WARN', message, meta);
  }
  error(message: string, meta?: LogMetadata): void {
    this.log('ERROR', message, meta);
  }
}
