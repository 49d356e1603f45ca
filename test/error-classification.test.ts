import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { ApplicationFailure } from '@temporalio/common';
import { classifyClickHouseError } from '../src/activities/clickhouse/errors';
import { classifyPostgresError } from '../src/activities/postgres/errors';
import { majorVersion } from '../src/activities/postgres/tools';
import { isTransientNetworkError } from '../src/errors';
import { clickHouseErrorCode } from '../src/platform/clickhouse-error-code';
import { closeStoreClients, createPostgresPool, createStoreClients } from '../src/store-clients';
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

  it('ClickHouse: a Native body the server cannot parse is permanent, whichever of its parsers refuses it', async () => {
    // One column, one row, then a column name 2^32-1 bytes long: ClickHouse 18 refuses it from its
    // HTTP library ("Poco::Exception. Code: 1000, … Too large string size."), modern servers with
    // code 131. Both are the server's verdict on the bytes; a retry sends the same bytes again.
    const header = Buffer.from([0x01, 0x01, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    const database = `error_classification_${randomBytes(4).toString('hex')}`;
    await clients.clickhouse.command({ query: `CREATE DATABASE ${database}` });
    let refused: unknown;
    try {
      await clients.clickhouse.command({ query: `CREATE TABLE ${database}.t (id UInt64, s String) ENGINE = Memory` });
      refused = await clients.clickhouse
        .exec({ query: `INSERT INTO ${database}.t FORMAT Native`, values: Readable.from([header]) })
        .then(async ({ stream }) => {
          stream.resume();
          await finished(stream);
        })
        .catch((err: unknown) => err);
    } finally {
      await clients.clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    }
    expect((refused as Error).message).toMatch(/too large string size/i);
    expect(verdict(classifyClickHouseError(refused, 'acme', 'kg_nodes'))).toBe('permanent');
    const poco = new Error(
      'Poco::Exception. Code: 1000, e.code() = 0, e.displayText() = Exception: Too large string size., e.what() = Exception',
    );
    expect(clickHouseErrorCode(poco)).toBe('1000');
    expect(verdict(classifyClickHouseError(poco, 'acme', 'kg_nodes'))).toBe('permanent');
  });

  it('PostgreSQL: a checked-out connection whose server ends it fails its next query, and the worker lives on', async () => {
    // A scratch database dropped under a cancelled load terminates such a connection; its 'error'
    // event, with nobody listening, used to end the worker process ("Connection terminated unexpectedly").
    const pool = createPostgresPool(loadConfig().postgres.url, 1);
    const client = await pool.connect();
    try {
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
      const ended = new Promise((resolve) => client.once('end', resolve));
      await clients.postgres.query('SELECT pg_terminate_backend($1)', [pid]);
      await ended;
      await expect(client.query('SELECT 1')).rejects.toThrow(/terminated|not queryable/);
    } finally {
      client.release(true);
      await pool.end();
    }
  });

  it('reads the major version of pg_dump and of the server, so an older pg_dump is refused', () => {
    expect(majorVersion('pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)')).toBe(15);
    expect(majorVersion('16.4')).toBe(16);
    expect(majorVersion('pg_dump (PostgreSQL) 14.0') < majorVersion('15.20')).toBe(true);
  });
});
