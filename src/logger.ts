import type { LogLevel, LogMetadata } from '@temporalio/common';

const LEVEL_ORDER: Record<LogLevel, number> = { TRACE: 0, DEBUG: 1, INFO: 2, WARN: 3, ERROR: 4 };

/** One JSON object per line on stderr: easy to grep by hand, easy to ship to a log store. */
export class JsonLineLogger {
  constructor(private readonly minimum: LogLevel = 'INFO') {}

  log(level: LogLevel, message: string, meta?: LogMetadata): void {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[this.minimum]) return;
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, message, ...meta })}\n`);
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
