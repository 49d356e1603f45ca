import { ApplicationFailure } from '@temporalio/common';
import { loadConfig } from '../src/config';
import { JsonLineLogger } from '../src/logger';

function capture(level: ConstructorParameters<typeof JsonLineLogger>[0] = 'INFO') {
  const lines: Record<string, unknown>[] = [];
  const logger = new JsonLineLogger(level, (line) => lines.push(JSON.parse(line) as Record<string, unknown>));
  return { logger, lines };
}

describe('the worker log', () => {
  test('an error in the metadata keeps its class, message, stack, code and cause chain', () => {
    const { logger, lines } = capture();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), {
      code: 'ECONNREFUSED',
      port: 8123,
    });
    const failure = new Error('backing up ClickHouse database org_acme failed', { cause: refused });
    logger.warn('Activity failed', { activityType: 'backupClickHouse', error: failure });
    expect(lines).toHaveLength(1);
    const error = lines[0]?.error as Record<string, unknown>;
    expect(error).toMatchObject({ name: 'Error', message: 'backing up ClickHouse database org_acme failed' });
    expect(String(error.stack)).toContain('logger.test.ts');
    expect(error.cause).toMatchObject({
      name: 'Error',
      message: 'connect ECONNREFUSED 127.0.0.1:8123',
      code: 'ECONNREFUSED',
      port: 8123,
    });
    expect(lines[0]).toMatchObject({ level: 'WARN', message: 'Activity failed', activityType: 'backupClickHouse' });
  });

  test('a Temporal failure keeps its type and non-retryable flag; a cyclic cause chain is cut, not followed forever', () => {
    const { logger, lines } = capture();
    const failure = ApplicationFailure.nonRetryable(
      'checksum mismatch in clickhouse/kg_nodes.native',
      'ChecksumMismatch',
    );
    const cyclic = new Error('outer');
    (cyclic as { cause?: unknown }).cause = cyclic;
    logger.error('failed', { failure, cyclic });
    const line = lines[0] as { failure: Record<string, unknown>; cyclic: Record<string, unknown> };
    expect(line.failure).toMatchObject({
      name: 'ApplicationFailure',
      type: 'ChecksumMismatch',
      message: 'checksum mismatch in clickhouse/kg_nodes.native',
      nonRetryable: true,
    });
    expect(JSON.stringify(line.cyclic)).toContain('[cause chain cut]');
  });

  test('LOG_LEVEL sets the lowest level written, in any case, and a wrong value fails start-up naming it', () => {
    expect(loadConfig({}).logLevel).toBe('INFO');
    expect(loadConfig({ LOG_LEVEL: 'debug' }).logLevel).toBe('DEBUG');
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(
      /LOG_LEVEL="loud": expected one of trace, debug, info, warn, error/,
    );
    const { logger, lines } = capture(loadConfig({ LOG_LEVEL: 'warn' }).logLevel);
    logger.info('not written');
    logger.warn('written');
    expect(lines.map((line) => line.message)).toEqual(['written']);
  });
});
