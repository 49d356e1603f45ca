import { ApplicationFailure } from '@temporalio/common';
import {
  classifyPostgresError,
  classifyToolFailure,
  isRetryableSqlState,
  sqlStateOf,
} from '../src/activities/postgres/errors';
import { runToolFrom } from '../src/activities/postgres/tools';
import { FailureType } from '../src/errors';
import { loadConfig } from '../src/config';
import { closeStoreClients, createStoreClients } from '../src/store-clients';

/** An error as node-postgres builds it from the server's ErrorResponse: `code` is the SQLSTATE, `severity` always set. */
const serverError = (code: string, message = `server error ${code}`) =>
  Object.assign(new Error(message), { code, severity: 'ERROR' });

/** What an error becomes in a PostgreSQL activity: rethrown for the retry policy, or a non-retryable failure. */
function verdict(classified: unknown): 'retried' | 'permanent' {
  return classified instanceof ApplicationFailure && classified.nonRetryable ? 'permanent' : 'retried';
}

describe('one PostgreSQL error classification, by SQLSTATE', () => {
  it.each([
    // class 08: the connection broke or could not be made
    ['08000', 'connection exception', true],
    ['08003', 'connection does not exist', true],
    ['08006', 'connection failure', true],
    ['08001', 'cannot establish a connection', true],
    // class 40: another transaction won the race
    ['40001', 'serialization failure (was permanent in deletion)', true],
    ['40P01', 'deadlock detected', true],
    ['40003', 'statement completion unknown', true],
    ['40002', 'integrity constraint violated at commit', false],
    // class 57: the server shuts down, crashed or is starting
    ['57P01', 'admin shutdown', true],
    ['57P02', 'crash shutdown', true],
    ['57P03', 'cannot connect now', true],
    ['57014', 'query canceled (was permanent in backup)', true],
    // class 53: resources come back as other work ends
    ['53000', 'insufficient resources', true],
    ['53100', 'disk full', true],
    ['53200', 'out of memory', true],
    ['53300', 'too many connections', true],
    // locks and sessions
    ['55P03', 'lock not available (was permanent in backup and describe)', true],
    ['55006', 'object in use', false],
    ['25P03', 'idle-in-transaction session timeout', true],
    ['25P02', 'in failed SQL transaction', false],
    // the server's verdict on the statement: the same statement fails the same way again
    ['42601', 'syntax error', false],
    ['42501', 'insufficient privilege', false],
    ['42P01', 'undefined table', false],
    ['42703', 'undefined column', false],
    ['22012', 'division by zero', false],
    ['22P02', 'invalid text representation', false],
    ['23505', 'unique violation', false],
    ['23503', 'foreign key violation', false],
    ['2BP01', 'dependent objects still exist', false],
    ['0A000', 'feature not supported', false],
    ['3D000', 'invalid catalog name (no such database)', false],
    ['XX000', 'internal error', false],
  ])('SQLSTATE %s (%s) → retryable: %s', (sqlstate, _name, retryable) => {
    expect(isRetryableSqlState(sqlstate)).toBe(retryable);
    const classified = classifyPostgresError(serverError(sqlstate), 'acme', 'the backup', 'public.users');
    expect(verdict(classified)).toBe(retryable ? 'retried' : 'permanent');
    if (!retryable) {
      expect(classified).toMatchObject({ type: FailureType.StoreRejected });
      expect((classified as Error).message).toContain(
        `[postgres org=acme object=public.users] PostgreSQL rejected the backup (SQLSTATE ${sqlstate})`,
      );
    }
  });

  it('an error without a SQLSTATE (a dropped connection, a failed pg_restore) is rethrown unchanged for the retry policy', () => {
    const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    expect(classifyPostgresError(reset, 'acme', 'the restore')).toBe(reset);
    const tool = new Error('pg_restore failed: could not open input file');
    expect(classifyPostgresError(tool, 'acme', 'the restore')).toBe(tool);
  });

  it("Node's own five-letter codes (EPIPE, EPERM) are not taken for a SQLSTATE: only server errors carry a severity", () => {
    const epipe = Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    expect(sqlStateOf(epipe)).toBeUndefined();
    expect(classifyPostgresError(epipe, 'acme', 'the backup')).toBe(epipe);
    const eperm = Object.assign(new Error('operation not permitted'), { code: 'EPERM' });
    expect(classifyPostgresError(eperm, 'acme', 'the backup')).toBe(eperm);
  });

  it("finds the SQLSTATE on the cause when a step wrapped the driver's error with its context", () => {
    const wrapped = new Error('loading shared rows of acme/b1 as acme failed: permission denied for table users', {
      cause: serverError('42501'),
    });
    expect(sqlStateOf(wrapped)).toBe('42501');
    expect(verdict(classifyPostgresError(wrapped, 'acme', 'the restore'))).toBe('permanent');
    const transient = new Error('loading shared rows failed', { cause: serverError('40001') });
    expect(classifyPostgresError(transient, 'acme', 'the restore')).toBe(transient);
  });

  it('a failure that is already classified passes unchanged', () => {
    const failure = ApplicationFailure.create({
      type: FailureType.UnknownOrganization,
      message: 'no such organization',
      nonRetryable: true,
    });
    expect(classifyPostgresError(failure, 'acme', 'the backup')).toBe(failure);
  });

  describe('errors of the real server', () => {
    const clients = createStoreClients(loadConfig());
    afterAll(() => closeStoreClients(clients));

    it('a syntax error and a division by zero are permanent and name the organization', async () => {
      for (const [sql, sqlstate] of [
        ['SELEC 1', '42601'],
        ['SELECT 1 / 0', '22012'],
      ] as const) {
        const err = await clients.postgres.query(sql).catch((e: unknown) => e);
        expect(sqlStateOf(err)).toBe(sqlstate);
        const classified = classifyPostgresError(err, 'acme', 'the deletion step');
        expect(verdict(classified)).toBe('permanent');
        expect((classified as Error).message).toMatch(
          new RegExp(`^\\[postgres org=acme\\] PostgreSQL rejected the deletion step \\(SQLSTATE ${sqlstate}\\)`),
        );
      }
    });

    it('a statement canceled by statement_timeout is retried', async () => {
      const client = await clients.postgres.connect();
      try {
        await client.query("SET statement_timeout = '50ms'");
        const err = await client.query('SELECT pg_sleep(5)').catch((e: unknown) => e);
        expect(sqlStateOf(err)).toBe('57014');
        expect(classifyPostgresError(err, 'acme', 'the backup')).toBe(err);
      } finally {
        await client.query('RESET statement_timeout').catch(() => undefined);
        client.release();
      }
    });
  });
});

describe("PostgreSQL tools' failures, classified from what they print", () => {
  const url = loadConfig().postgres.url;
  const psql = (dbname: string, sql: string) =>
    runToolFrom(
      'psql',
      ['-X', '-v', 'ON_ERROR_STOP=1', `--dbname=${dbname}`, '-c', sql],
      undefined,
      new AbortController().signal,
      'psql',
      {
        orgId: 'acme',
        object: 'postgres/schemas.dump',
      },
    ).then(
      () => 'succeeded',
      (err: unknown) => verdict(err),
    );

  it('a statement the server refuses fails at once, naming the object; it would fail the same on every retry', async () => {
    expect(await psql(url, 'SELECT * FROM no_such_table_of_this_test')).toBe('permanent');
    const failure = await runToolFrom(
      'psql',
      ['-X', '-v', 'ON_ERROR_STOP=1', `--dbname=${url}`, '-c', 'SELECT 1::public.no_such_type'],
      undefined,
      new AbortController().signal,
      'pg_restore',
      {
        orgId: 'acme',
        object: 'postgres/schemas.dump',
      },
    ).catch((err: unknown) => err);
    expect(String((failure as Error).message)).toMatch(
      /\[postgres org=acme object=postgres\/schemas\.dump\] pg_restore failed for postgres\/schemas\.dump: .*type "public\.no_such_type" does not exist/,
    );
  });

  it('a refused connection is retried', async () => {
    const closed = new URL(url);
    closed.port = '1';
    expect(await psql(closed.toString(), 'SELECT 1')).toBe('retried');
  });

  it.each([
    ['pg_restore: error: could not execute query: ERROR:  type "public.citext" does not exist', 'permanent'],
    [
      'pg_dump: error: server version: 16.1; pg_dump version: 15.4\npg_dump: error: aborting because of server version mismatch',
      'permanent',
    ],
    ['pg_restore: error: could not write to output file: No space left on device', 'permanent'],
    ['pg_dump: error: connection to server at "10.0.0.5", port 5432 failed: Connection refused', 'retried'],
    ['pg_restore: error: could not execute query: server closed the connection unexpectedly', 'retried'],
    ['pg_dump: error: query failed: FATAL:  terminating connection due to administrator command', 'retried'],
    ['pg_restore: error: input file appears to be truncated', 'retried'],
  ])('%j → %s', (words, expected) => {
    expect(verdict(classifyToolFailure('pg_restore', words, { orgId: 'acme', object: 'x' }))).toBe(expected);
  });
});
