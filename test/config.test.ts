import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ConfigError, loadConfig } from '../src/config';

describe('configuration', () => {
  it('takes the kubeconfig from the standard KUBECONFIG (its first file), then KUBECONFIG_PATH, then the local stack', () => {
    expect(loadConfig({}, '/srv/app').kubernetes.kubeconfigPath).toBe('/srv/app/.data/kube/kubeconfig');
    expect(loadConfig({ KUBECONFIG_PATH: 'k/old' }, '/srv/app').kubernetes.kubeconfigPath).toBe('/srv/app/k/old');
    expect(
      loadConfig({ KUBECONFIG: '/etc/kube/a:/etc/kube/b', KUBECONFIG_PATH: 'k/old' }, '/srv/app').kubernetes
        .kubeconfigPath,
    ).toBe('/etc/kube/a');
  });

  it('defaults fit the local stack', () => {
    const config = loadConfig({}, '/srv/app');
    expect(config.temporal).toEqual({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'eloquent-recovery',
      security: {},
    });
    expect(config.postgres.url).toBe('postgres://postgres@127.0.0.1:5432/eloquent');
    expect(config.clickhouse.url).toBe('http://127.0.0.1:8123');
    expect(config.clickhouse.exportGzipLevel).toBe(1);
    expect(config.nats.url).toBe('nats://127.0.0.1:4222');
    expect(config.redis.url).toBe('redis://127.0.0.1:6379/0');
    expect(config.backup.directory).toBe('/srv/app/.data/backups');
    expect(config.backup.masterKeyBase64).toBeUndefined();
  });

  it('reads every variable it is given', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    const config = loadConfig(
      {
        TEMPORAL_ADDRESS: 'temporal.internal:7233',
        TEMPORAL_NAMESPACE: 'prod',
        TEMPORAL_TASK_QUEUE: 'recovery',
        POSTGRES_URL: 'postgresql://u:p@db:5432/platform',
        CLICKHOUSE_URL: 'https://ch:8443',
        CLICKHOUSE_USER: 'backup',
        CLICKHOUSE_PASSWORD: 's3cret',
        CLICKHOUSE_EXPORT_GZIP_LEVEL: '6',
        NATS_URL: 'nats://nats:4222',
        REDIS_URL: 'rediss://cache:6380/2',
        BACKUP_DIR: 'relative/backups',
        BACKUP_MASTER_KEY: key,
        PREFLIGHT_TIMEOUT_MS: '2500',
      },
      '/srv/app',
    );
    expect(config.temporal.namespace).toBe('prod');
    expect(config.clickhouse).toEqual({
      url: 'https://ch:8443',
      username: 'backup',
      password: 's3cret',
      exportGzipLevel: 6,
    });
    expect(config.backup).toMatchObject({
      store: 'filesystem',
      directory: '/srv/app/relative/backups',
      masterKeyBase64: key,
    });
    expect(config.preflightTimeoutMs).toBe(2500);
  });

  it('names every bad variable, its value and what was expected, in one error', () => {
    let thrown: unknown;
    try {
      loadConfig({
        TEMPORAL_ADDRESS: 'no-port',
        POSTGRES_URL: 'mysql://db/x',
        CLICKHOUSE_URL: 'ftp://ch',
        NATS_URL: 'http://nats',
        REDIS_URL: 'not a url',
        PREFLIGHT_TIMEOUT_MS: 'soon',
        BACKUP_MASTER_KEY: 'too-short',
        METRICS_PORT: '70000',
        CLICKHOUSE_EXPORT_GZIP_LEVEL: '0',
      });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const error = thrown as ConfigError;
    expect(error.problems).toHaveLength(9);
    expect(error.message).toContain('TEMPORAL_ADDRESS="no-port": expected host:port');
    expect(error.message).toContain('POSTGRES_URL="mysql://db/x": expected a URL starting with postgres://');
    expect(error.message).toContain('CLICKHOUSE_URL="ftp://ch"');
    expect(error.message).toContain('NATS_URL="http://nats"');
    expect(error.message).toContain('REDIS_URL="not a url"');
    expect(error.message).toContain('PREFLIGHT_TIMEOUT_MS="soon": expected a whole number of milliseconds');
    expect(error.message).toContain('METRICS_PORT="70000"');
    expect(error.message).toContain('CLICKHOUSE_EXPORT_GZIP_LEVEL="0": expected a gzip level 1-9');
    // Secrets are named but never printed.
    expect(error.message).toContain('BACKUP_MASTER_KEY="<hidden>"');
    expect(error.message).not.toContain('too-short');
  });

  it('BACKUP_STORE=s3 reads the bucket, prefix, endpoint and the standard AWS credentials', () => {
    const config = loadConfig(
      {
        BACKUP_STORE: 's3',
        S3_ENDPOINT: 'http://127.0.0.1:9510',
        S3_BUCKET: 'team-backups',
        S3_PREFIX: 'eloquent/prod',
        S3_REGION: 'eu-central-1',
        AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI',
      },
      '/srv/app',
    );
    expect(config.backup.store).toBe('s3');
    expect(config.backup.s3).toEqual({
      endpoint: 'http://127.0.0.1:9510',
      bucket: 'team-backups',
      prefix: 'eloquent/prod/',
      region: 'eu-central-1',
      forcePathStyle: true,
      conditionalPuts: true,
      partBytes: 8 * 1024 * 1024,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI' },
    });
    // Without an endpoint it is AWS S3 itself: virtual-hosted URLs, and the SDK's own credential chain.
    const aws = loadConfig({ BACKUP_STORE: 's3', S3_BUCKET: 'team-backups' }, '/srv/app').backup.s3;
    expect(aws).toMatchObject({ endpoint: undefined, forcePathStyle: false, prefix: '', credentials: undefined });
  });

  it('a bad S3 setting fails start-up naming the variable, and never prints a secret', () => {
    let thrown: unknown;
    try {
      loadConfig({
        BACKUP_STORE: 'gcs',
        S3_BUCKET: 'Team_Backups',
        S3_PREFIX: '../up',
        S3_ENDPOINT: 's3.internal',
        S3_PART_BYTES: '1024',
        AWS_SECRET_ACCESS_KEY: 'x',
        AWS_SESSION_TOKEN: 'tok',
      });
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const error = thrown as ConfigError;
    expect(error.problems).toHaveLength(5);
    expect(error.message).toContain('BACKUP_STORE="gcs": expected filesystem or s3');
    expect(error.message).toContain('S3_BUCKET="Team_Backups": expected an S3 bucket name');
    expect(error.message).toContain('S3_PREFIX="../up"');
    expect(error.message).toContain('S3_ENDPOINT="s3.internal": expected a URL starting with http:// or https://');
    expect(error.message).toContain('S3_PART_BYTES="1024": expected at least 5242880 bytes');
  });

  it('reads the master key and database passwords from files (mounted Secrets), never needing them in a variable', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'config-secrets-'));
    try {
      const key = Buffer.alloc(32, 9).toString('base64');
      writeFileSync(path.join(dir, 'master'), `${key}\n`);
      writeFileSync(path.join(dir, 'pg'), 'p@ss:w/rd\n');
      writeFileSync(path.join(dir, 'ch'), 'ch-secret');
      const config = loadConfig(
        {
          BACKUP_MASTER_KEY_FILE: 'master',
          POSTGRES_URL: 'postgres://backup@db:5432/platform',
          POSTGRES_PASSWORD_FILE: path.join(dir, 'pg'),
          CLICKHOUSE_PASSWORD_FILE: path.join(dir, 'ch'),
        },
        dir,
      );
      expect(config.backup.masterKeyBase64).toBe(key);
      expect(decodeURIComponent(new URL(config.postgres.url).password)).toBe('p@ss:w/rd');
      expect(new URL(config.postgres.url).username).toBe('backup');
      expect(config.clickhouse.password).toBe('ch-secret');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing or bad secret file, or a master key given twice, fails start-up naming the variable and the file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'config-secrets-'));
    try {
      writeFileSync(path.join(dir, 'short'), 'c2hvcnQ=\n');
      writeFileSync(path.join(dir, 'empty'), '');
      let thrown: unknown;
      try {
        loadConfig(
          { BACKUP_MASTER_KEY_FILE: 'short', POSTGRES_PASSWORD_FILE: 'missing', CLICKHOUSE_PASSWORD_FILE: 'empty' },
          dir,
        );
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(ConfigError);
      const message = (thrown as ConfigError).message;
      expect(message).toMatch(/BACKUP_MASTER_KEY_FILE="short": the file must hold base64 of exactly 32 bytes/);
      expect(message).toMatch(/POSTGRES_PASSWORD_FILE=".*missing": cannot read the file/);
      expect(message).toMatch(/CLICKHOUSE_PASSWORD_FILE=".*empty": the file is empty/);
      expect(message).not.toContain('c2hvcnQ');
      const key = Buffer.alloc(32, 1).toString('base64');
      writeFileSync(path.join(dir, 'master'), key);
      expect(() => loadConfig({ BACKUP_MASTER_KEY: key, BACKUP_MASTER_KEY_FILE: 'master' }, dir)).toThrow(
        /BACKUP_MASTER_KEY_FILE and BACKUP_MASTER_KEY are both set/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
