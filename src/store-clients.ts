import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import type { NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import type { AppConfig } from './config';

/**
 * Opens a NATS connection on first use and again after it was closed, so a worker started while
 * NATS is down still starts, and its activities fail (and retry) instead of the whole process.
 */
export class NatsConnector {
  private pending: Promise<NatsConnection> | undefined;

  constructor(
    readonly url: string,
    private readonly timeoutMs: number,
  ) {}

  connection(): Promise<NatsConnection> {
    if (!this.pending) {
      const attempt = connect({
        servers: this.url,
        timeout: this.timeoutMs,
        maxReconnectAttempts: -1,
        name: 'eloquent-recovery',
      });
      this.pending = attempt.then(
        (nc) => {
          void nc.closed().then(() => {
            if (this.pending === attempt) this.pending = undefined;
          });
          return nc;
        },
        (err: unknown) => {
          this.pending = undefined;
          throw err;
        },
      );
    }
    return this.pending;
  }

  async close(): Promise<void> {
    const pending = this.pending;
    this.pending = undefined;
    if (!pending) return;
    const nc = await pending.catch(() => undefined);
    if (nc && !nc.isClosed()) await nc.drain().catch(() => nc.close());
  }
}

/** The typed clients of every store, built once from the configuration and injected into activities. */
export interface StoreClients {
  postgres: Pool;
  /**
   * Opens a pool on another database of the same PostgreSQL server (a scratch database of a
   * verification or a restore) with the platform pool's settings. Such a database lives for one
   * activity, so its pool cannot be built at start: the caller ends it.
   */
  openPostgresDatabase(database: string, maxConnections: number): Pool;
  clickhouse: ClickHouseClient;
  nats: NatsConnector;
  redis: Redis;
}

/** The URL of another database on the same server. */
export function databaseUrl(baseUrl: string, database: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

/**
 * A ClickHouse client with the project's settings: the platform's, or one for another server (a
 * platform restore's target) whose URL may carry the credentials (`http://user:password@host:8123`).
 */
export function createClickHouseClient(options: {
  url: string;
  username?: string;
  password?: string;
}): ClickHouseClient {
  const url = new URL(options.url);
  const username = options.username ?? (url.username ? decodeURIComponent(url.username) : 'default');
  const password = options.password ?? decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  return createClient({
    url: url.toString().replace(/\/$/, ''),
    username,
    password,
    // Exports of large tables stream for minutes; progress headers would overflow Node's header limit.
    request_timeout: 10 * 60_000,
    // ClickHouse 18 rejects settings it does not know; send none by default.
    clickhouse_settings: {},
    // The client warns about the long timeout on every start; errors still reach the caller.
    log: { level: ClickHouseLogLevel.ERROR },
  });
}

/**
 * A PostgreSQL pool whose connections never crash the worker when their server goes away. An idle
 * client that loses its server emits 'error' on the pool; a checked-out one (a transaction between
 * two statements, a scratch database's load whose database is dropped under a cancelled
 * verification) emits it on itself, and an 'error' event nobody listens to kills the process. The
 * queries of such a client fail on their own ("Connection terminated unexpectedly", then "not
 * queryable"), so the events are only noted; the next checkout reconnects.
 */
export function createPostgresPool(connectionString: string, max: number, connectionTimeoutMillis?: number): Pool {
  const pool = new Pool({ connectionString, max, ...(connectionTimeoutMillis ? { connectionTimeoutMillis } : {}) });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  return pool;
}

export function createStoreClients(config: AppConfig): StoreClients {
  const timeoutMs = config.preflightTimeoutMs;
  const openPostgres = (connectionString: string, max: number): Pool =>
    createPostgresPool(connectionString, max, timeoutMs);
  const postgres = openPostgres(config.postgres.url, 10);
  const clickhouse = createClickHouseClient({
    url: config.clickhouse.url,
    username: config.clickhouse.username,
    password: config.clickhouse.password,
  });
  const redis = new Redis(config.redis.url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 2,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  // ioredis reports every failed reconnect as an 'error' event; commands fail on their own.
  redis.on('error', () => undefined);
  return {
    postgres,
    openPostgresDatabase: (database, maxConnections) =>
      openPostgres(databaseUrl(config.postgres.url, database), maxConnections),
    clickhouse,
    nats: new NatsConnector(config.nats.url, timeoutMs),
    redis,
  };
}

export async function closeStoreClients(clients: StoreClients): Promise<void> {
  await Promise.allSettled([
    clients.postgres.end(),
    clients.clickhouse.close(),
    clients.nats.close(),
    clients.redis.quit().catch(() => clients.redis.disconnect()),
  ]);
}
