import { ApplicationFailure } from '@temporalio/common';
import { classifyClickHouseError } from '../src/activities/clickhouse/errors';
import { classifyPostgresError } from '../src/activities/postgres/errors';
import { majorVersion } from '../src/activities/postgres/tools';
import { isTransientNetworkError } from '../src/errors';
import { createStoreClients, closeStoreClients } from '../src/store-clients';
import { loadConfig } from '../src/config';

/** What a store error becomes: retried (thrown as it is) or permanent (a non-retryable failure). */
function verdict(classified: unknown): 'retried' | 'permanent' {
  return classified instanceof ApplicationFailure && classified.nonRetryable ? 'permanent' : 'retried';
}

describe('which errors are retried', () => {
  const clients = createStoreClients(loadConfig());
  afterAll(() => closeStoreClients(clients));

  it('a refused or reset connection is retried, whatever the store', () => {
    expect(
      isTransientNetworkError(
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8123'), { code: 'ECONNREFUSED' }),
      ),
    ).toBe(true);
    expect(isTransientNetworkError(new Error('socket hang up'))).toBe(true);
    expect(
      verdict(
        classifyClickHouseError(
          Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
          'acme',
          'kg_nodes',
        ),
      ),
    ).toBe('retried');
    expect(
      verdict(
        classifyPostgresError(Object.assign(new Error('Connection terminated unexpectedly')), 'acme', 'the backup'),
      ),
    ).toBe('retried');
  });

  it('PostgreSQL: a server shutting down is retried, an SQL error is permanent and names the organization', async () => {
    const syntax = await clients.postgres.query('SELEC 1').catch((err: unknown) => err);
    const classified = classifyPostgresError(syntax, 'acme', 'the backup');
    expect(verdict(classified)).toBe('permanent');
    expect((classified as Error).message).toMatch(/\[postgres org=acme\].*42601/);
    expect(
      verdict(
        classifyPostgresError(
          Object.assign(new Error('terminating connection due to administrator command'), {
            code: '57P01',
            severity: 'FATAL',
          }),
          'acme',
          'the backup',
        ),
      ),
    ).toBe('retried');
    expect(
      verdict(
        classifyPostgresError(
          Object.assign(new Error('could not serialize access'), { code: '40001', severity: 'ERROR' }),
          'acme',
          'the backup',
        ),
      ),
    ).toBe('retried');
  });

  it('ClickHouse: a query the server rejects is permanent and names the object', async () => {
    const unknownTable = await clients.clickhouse
      .query({ query: 'SELECT * FROM system.no_such_table' })
      .catch((err: unknown) => err);
    const classified = classifyClickHouseError(unknownTable, 'acme', 'kg_nodes');
    expect(verdict(classified)).toBe('permanent');
    expect((classified as Error).message).toMatch(/\[clickhouse org=acme object=kg_nodes\]/);
  });

  it('reads the major version of pg_dump and of the server, so an older pg_dump is refused', () => {
    expect(majorVersion('pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)')).toBe(15);
    expect(majorVersion('16.4')).toBe(16);
    expect(majorVersion('pg_dump (PostgreSQL) 14.0') < majorVersion('15.20')).toBe(true);
  });
});
