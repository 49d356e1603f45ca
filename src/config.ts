import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { z } from 'zod';
import type { LogLevel } from '@temporalio/common';
import { loadClientConnectConfig } from '@temporalio/envconfig';
import type { NativeConnectionOptions } from '@temporalio/worker';

/**
 * The one configuration of eloquent-recovery, read once at start-up from environment variables.
 * Defaults fit the local stack started by `scripts/stack.sh`; a real deployment overrides them.
 */
export interface AppConfig {
  /** Lowest level the worker logs (`LOG_LEVEL`, case-insensitive). @default 'INFO' */
  logLevel: LogLevel;
  temporal: {
    /** host:port of the Temporal frontend (gRPC). */
    address: string;
    namespace: string;
    taskQueue: string;
    /**
     * API key, TLS and gRPC headers of the connection, from `@temporalio/envconfig`: the standard
     * `TEMPORAL_API_KEY`, `TEMPORAL_TLS*`, `TEMPORAL_GRPC_META_*` variables over the profile
     * `TEMPORAL_PROFILE` (default `default`) of `TEMPORAL_CONFIG_FILE` (default
     * `~/.config/temporalio/temporal.toml`). Empty against the local dev server.
     */
    security: TemporalConnectionSecurity;
  };
  postgres: {
    /** Connection URL of the platform database. */
    url: string;
    /** Directory holding pg_dump / pg_restore / psql; empty means "on PATH". */
    binDir: string;
    /** `pg_restore --jobs` for restores into scratch databases (verification); 1-16. @default 2 */
    restoreJobs: number;
  };
  clickhouse: {
    url: string;
    username: string;
    password: string;
    /** gzip level (1-9) at which the server compresses backup exports; 1 is fastest. */
    exportGzipLevel: number;
  };
  nats: { url: string };
  redis: { url: string };
  backup: {
    /** Where backups live: a directory (`filesystem`) or an S3-compatible bucket (`s3`). @default 'filesystem' */
    store: 'filesystem' | 's3';
    /** Root directory of the filesystem backup store and its key files (with `s3` the keys are in the bucket). */
    directory: string;
    /** Base64 of a 32-byte master key; when set, artifacts are encrypted per organization. */
    masterKeyBase64: string | undefined;
    /**
     * Base64 of at least 32 bytes (`BACKUP_AUTHENTICATION_SECRET`): authenticates manifests and sidecars
     * (HMAC-SHA-256) of organizations without a data key; with a master key, the data key does.
     */
    authenticationSecretBase64: string | undefined;
    /**
     * `BACKUP_ACCEPT_UNAUTHENTICATED`: read manifests and sidecars without authentication (written before
     * it existed) although a master key or secret is configured. Off by default: anyone who can write
     * the store could otherwise strip a backup's authentication and alter it (a downgrade).
     */
    acceptUnauthenticated: boolean;
    /** The bucket of the `s3` store; read whichever store is chosen, so a bad value fails start-up. */
    s3: S3StoreConfig;
  };
  kubernetes: {
    /** Path of a kubeconfig; ignored when running in a pod with a service account. */
    kubeconfigPath: string;
    /** Use the pod's service account instead of the kubeconfig (default: when KUBERNETES_SERVICE_HOST is set). */
    inCluster: boolean;
    namespace: string;
    helmRelease: string;
    helmBin: string;
    /** Keys of Helm values never kept (case-insensitive), besides every value found in a Secret. */
    helmValuesRedactKeys: RegExp;
    /** A git work tree Helm values are committed to, one commit per release revision; unset = the backup store only. */
    helmValuesGitDir: string | undefined;
  };
  /** JSON file overriding the default organization data map (src/platform/data-map.ts); unset = defaults. */
  platformModelFile: string | undefined;
  /** How long one preflight probe of a store may take before the store counts as down. */
  preflightTimeoutMs: number;
  /** Port of the worker's Prometheus endpoint; 0 disables it. */
  metricsPort: number;
  /** Address `/metrics` binds to (`METRICS_HOST`). @default '127.0.0.1': scraping from elsewhere is a deliberate choice. */
  metricsHost: string;
  /** A pre-built workflow bundle; unset = bundle `src/workflows` at worker start. */
  workflowBundlePath: string | undefined;
}

/** What a connection to a secured Temporal (a cluster, Temporal Cloud) needs beside its address. */
export interface TemporalConnectionSecurity {
  apiKey?: string;
  /** `true` = TLS with the system's roots; an object = mTLS or a private CA; absent = plaintext (the dev server). */
  tls?: NativeConnectionOptions['tls'];
  metadata?: NativeConnectionOptions['metadata'];
}

/** Options for `NativeConnection.connect` and `Connection.connect` (worker, SDK, CLI, demo): one place. */
export function temporalConnectionOptions(temporal: AppConfig['temporal']): {
  address: string;
  apiKey?: string;
  tls?: NativeConnectionOptions['tls'];
  metadata?: NativeConnectionOptions['metadata'];
} {
  return { address: temporal.address, ...temporal.security };
}

/** An S3-compatible bucket holding the backups (`BACKUP_STORE=s3`). */
export interface S3StoreConfig {
  /** URL of an S3-compatible server; unset = AWS S3 in `region`. Local stack: `http://127.0.0.1:9510` (gofakes3). */
  endpoint: string | undefined;
  bucket: string;
  /** Folder inside the bucket, `''` or ending with `/`. */
  prefix: string;
  region: string;
  /** Path-style URLs (`<endpoint>/<bucket>/<key>`): on when an endpoint is set, as S3-compatible servers need. */
  forcePathStyle: boolean;
  /** Whether the server honours `If-None-Match: *` on PUT (see s3-blobs.ts for the race without it). */
  conditionalPuts: boolean;
  /** Size of one multipart part: one artifact upload holds up to three (two being sent, one filling). */
  partBytes: number;
  /** AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (/ AWS_SESSION_TOKEN) when both are set; unset = the SDK's own chain (profiles, IRSA, instance roles). */
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string } | undefined;
}

/** Thrown when the environment does not describe a usable configuration; lists every problem. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(readonly problems: readonly string[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
  }
}

const urlWithProtocols = (protocols: readonly string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    { message: `expected a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}` },
  );

const hostPort = z
  .string()
  .regex(/^[A-Za-z0-9.\-_[\]:]+:\d{1,5}$/, { message: 'expected host:port, e.g. 127.0.0.1:7233' });

const positiveInt = (what: string) =>
  z
    .string()
    .regex(/^\d+$/, { message: `expected a whole number of ${what}` })
    .transform(Number)
    .refine((n) => n > 0, { message: `expected a positive number of ${what}` });

const port = z
  .string()
  .regex(/^\d+$/, { message: 'expected a port number 0-65535' })
  .transform(Number)
  .refine((n) => n <= 65535, { message: 'expected a port number 0-65535' });

const masterKey = z
  .string()
  .refine((value) => Buffer.from(value, 'base64').length === 32 && /^[A-Za-z0-9+/]+=*$/.test(value), {
    message: 'expected base64 of exactly 32 bytes (e.g. `openssl rand -base64 32`)',
  });

const identifier = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, {
  message: 'expected letters, digits, ".", "_" or "-" (1-200 characters)',
});

/** Environment variables, their defaults and rules. Every key is the variable's name. */
function environmentSchema(cwd: string) {
  return z.object({
    TEMPORAL_ADDRESS: hostPort.optional(),
    TEMPORAL_NAMESPACE: identifier.optional(),
    TEMPORAL_TASK_QUEUE: identifier.default('eloquent-recovery'),
    POSTGRES_URL: urlWithProtocols(['postgres:', 'postgresql:']).default('postgres://postgres@127.0.0.1:5432/eloquent'),
    /** A file holding the password of POSTGRES_URL's user (a mounted Secret); overrides the URL's. */
    POSTGRES_PASSWORD_FILE: z.string().min(1).optional(),
    POSTGRES_BIN_DIR: z.string().default(''),
    POSTGRES_RESTORE_JOBS: z
      .string()
      .regex(/^([1-9]|1[0-6])$/, { message: 'expected a number of pg_restore jobs 1-16' })
      .transform(Number)
      .default(2),
    CLICKHOUSE_URL: urlWithProtocols(['http:', 'https:']).default('http://127.0.0.1:8123'),
    CLICKHOUSE_USER: z.string().min(1, { message: 'expected a non-empty user name' }).default('default'),
    CLICKHOUSE_PASSWORD: z.string().default(''),
    /** A file holding CLICKHOUSE_PASSWORD (a mounted Secret); wins over the variable. */
    CLICKHOUSE_PASSWORD_FILE: z.string().min(1).optional(),
    CLICKHOUSE_EXPORT_GZIP_LEVEL: z
      .string()
      .regex(/^[1-9]$/, { message: 'expected a gzip level 1-9' })
      .transform(Number)
      .default(1),
    NATS_URL: urlWithProtocols(['nats:', 'tls:']).default('nats://127.0.0.1:4222'),
    REDIS_URL: urlWithProtocols(['redis:', 'rediss:']).default('redis://127.0.0.1:6379/0'),
    BACKUP_DIR: z
      .string()
      .min(1, { message: 'expected a directory path' })
      .default(path.join(cwd, '.data', 'backups')),
    BACKUP_MASTER_KEY: masterKey.optional(),
    /** Authenticates manifests and sidecars when no data key does (see storage/backup-authentication.ts). */
    BACKUP_AUTHENTICATION_SECRET: z
      .string()
      .refine((value) => Buffer.from(value, 'base64').length >= 32 && /^[A-Za-z0-9+/]+=*$/.test(value), {
        message: 'expected base64 of at least 32 bytes (e.g. `openssl rand -base64 32`)',
      })
      .optional(),
    /** Accept unauthenticated (older) manifests and sidecars although authentication is configured. */
    BACKUP_ACCEPT_UNAUTHENTICATED: z.enum(['true', 'false'], { message: 'expected true or false' }).default('false'),
    /** A file holding BACKUP_MASTER_KEY (a mounted Secret), so the key is in no environment. */
    BACKUP_MASTER_KEY_FILE: z.string().min(1).optional(),
    /** Which backup store the worker writes to and reads from. */
    BACKUP_STORE: z.enum(['filesystem', 's3'], { message: 'expected filesystem or s3' }).default('filesystem'),
    /** Unset with BACKUP_STORE=s3 means AWS S3 itself; the local stack's server is http://127.0.0.1:9510. */
    S3_ENDPOINT: urlWithProtocols(['http:', 'https:']).optional(),
    /** S3's bucket naming rules: 3-63 lower-case letters, digits, "." and "-". */
    S3_BUCKET: z
      .string()
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, {
        message: 'expected an S3 bucket name: 3-63 lower-case letters, digits, "." or "-"',
      })
      .default('eloquent-backups'),
    /** Folder in the bucket; a trailing "/" is added when missing. */
    S3_PREFIX: z
      .string()
      .regex(/^([A-Za-z0-9_][A-Za-z0-9._-]*\/?)*$/, {
        message: 'expected "/"-separated segments of letters, digits, ".", "_" or "-" (e.g. backups/prod/)',
      })
      .transform((prefix) => (prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`))
      .default(''),
    S3_REGION: z
      .string()
      .regex(/^[a-z0-9-]+$/, { message: 'expected a region name such as us-east-1' })
      .default('us-east-1'),
    S3_FORCE_PATH_STYLE: z.enum(['true', 'false'], { message: 'expected true or false' }).optional(),
    S3_CONDITIONAL_PUTS: z.enum(['true', 'false'], { message: 'expected true or false' }).default('true'),
    /** At least S3's 5 MiB. */
    S3_PART_BYTES: positiveInt('bytes')
      .refine((n) => n >= 5 * 1024 * 1024, { message: 'expected at least 5242880 bytes (S3 refuses smaller parts)' })
      .default(8 * 1024 * 1024),
    AWS_ACCESS_KEY_ID: z.string().optional(),
    AWS_SECRET_ACCESS_KEY: z.string().optional(),
    AWS_SESSION_TOKEN: z.string().optional(),
    KUBECONFIG: z.string().min(1).optional(),
    KUBECONFIG_PATH: z
      .string()
      .min(1)
      .default(path.join(cwd, '.data', 'kube', 'kubeconfig')),
    K8S_NAMESPACE: identifier.default('eloquent'),
    HELM_RELEASE: identifier.default('eloquent'),
    HELM_BIN: z
      .string()
      .min(1)
      .default(path.join(cwd, '.tools', 'bin', 'helm')),
    K8S_IN_CLUSTER: z.enum(['true', 'false'], { message: 'expected true or false' }).optional(),
    HELM_VALUES_REDACT_KEYS: z
      .string()
      .min(1)
      .refine(
        (source) => {
          try {
            new RegExp(source, 'i');
            return true;
          } catch {
            return false;
          }
        },
        { message: 'expected a regular expression' },
      )
      .default('password|passw|secret|token|api[-_]?key|private[-_]?key|credential|auth|cert|dsn'),
    HELM_VALUES_GIT_DIR: z.string().min(1).optional(),
    KUBERNETES_SERVICE_HOST: z.string().optional(),
    PLATFORM_MODEL_FILE: z.string().min(1).optional(),
    PREFLIGHT_TIMEOUT_MS: positiveInt('milliseconds').default(5000),
    METRICS_PORT: port.default(9464),
    METRICS_HOST: z
      .string()
      .regex(/^[0-9A-Za-z.:-]+$/, { message: 'expected an address to bind, such as 127.0.0.1 or 0.0.0.0' })
      .default('127.0.0.1'),
    WORKFLOW_BUNDLE_PATH: z.string().min(1).optional(),
    LOG_LEVEL: z
      .string()
      .transform((level) => level.toUpperCase())
      .pipe(
        z.enum(['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'], {
          message: 'expected one of trace, debug, info, warn, error',
        }),
      )
      .default('INFO'),
  });
}

/**
 * Parses the configuration from `env` (usually `process.env`). Empty variables count as unset.
 * @throws ConfigError naming every bad variable, its value and what was expected.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd: string = process.cwd()): AppConfig {
  const schema = environmentSchema(cwd);
  const present: Record<string, string> = {};
  for (const key of Object.keys(schema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') present[key] = value;
  }
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0]);
        const shown = /PASSWORD|KEY|TOKEN/.test(name) ? '<hidden>' : present[name];
        return `${name}=${JSON.stringify(shown)}: ${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  const problems: string[] = [];
  const secret = (variable: string, file: string | undefined): string | undefined =>
    file === undefined ? undefined : readSecretFile(variable, path.resolve(cwd, file), problems);
  const postgresPassword = secret('POSTGRES_PASSWORD_FILE', e.POSTGRES_PASSWORD_FILE);
  const clickhousePassword = secret('CLICKHOUSE_PASSWORD_FILE', e.CLICKHOUSE_PASSWORD_FILE);
  let masterKeyBase64 = e.BACKUP_MASTER_KEY;
  const masterKeyFromFile = secret('BACKUP_MASTER_KEY_FILE', e.BACKUP_MASTER_KEY_FILE);
  if (masterKeyFromFile !== undefined) {
    if (e.BACKUP_MASTER_KEY !== undefined)
      problems.push('BACKUP_MASTER_KEY_FILE and BACKUP_MASTER_KEY are both set: give the master key once');
    else if (!masterKey.safeParse(masterKeyFromFile).success)
      problems.push(
        `BACKUP_MASTER_KEY_FILE=${JSON.stringify(e.BACKUP_MASTER_KEY_FILE)}: the file must hold base64 of exactly 32 bytes (e.g. \`openssl rand -base64 32\`)`,
      );
    else masterKeyBase64 = masterKeyFromFile;
  }
  const temporal = temporalFromEnvironment(env, cwd, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    logLevel: e.LOG_LEVEL,
    temporal: { ...temporal, taskQueue: e.TEMPORAL_TASK_QUEUE },
    postgres: {
      url: withPassword(e.POSTGRES_URL, postgresPassword),
      binDir: e.POSTGRES_BIN_DIR,
      restoreJobs: e.POSTGRES_RESTORE_JOBS,
    },
    clickhouse: {
      url: e.CLICKHOUSE_URL,
      username: e.CLICKHOUSE_USER,
      password: clickhousePassword ?? e.CLICKHOUSE_PASSWORD,
      exportGzipLevel: e.CLICKHOUSE_EXPORT_GZIP_LEVEL,
    },
    nats: { url: e.NATS_URL },
    redis: { url: e.REDIS_URL },
    backup: {
      store: e.BACKUP_STORE,
      directory: path.resolve(cwd, e.BACKUP_DIR),
      masterKeyBase64,
      authenticationSecretBase64: e.BACKUP_AUTHENTICATION_SECRET,
      acceptUnauthenticated: e.BACKUP_ACCEPT_UNAUTHENTICATED === 'true',
      s3: {
        endpoint: e.S3_ENDPOINT,
        bucket: e.S3_BUCKET,
        prefix: e.S3_PREFIX,
        region: e.S3_REGION,
        forcePathStyle:
          e.S3_FORCE_PATH_STYLE === undefined ? e.S3_ENDPOINT !== undefined : e.S3_FORCE_PATH_STYLE === 'true',
        conditionalPuts: e.S3_CONDITIONAL_PUTS === 'true',
        partBytes: e.S3_PART_BYTES,
        credentials:
          e.AWS_ACCESS_KEY_ID !== undefined && e.AWS_SECRET_ACCESS_KEY !== undefined
            ? {
                accessKeyId: e.AWS_ACCESS_KEY_ID,
                secretAccessKey: e.AWS_SECRET_ACCESS_KEY,
                ...(e.AWS_SESSION_TOKEN === undefined ? {} : { sessionToken: e.AWS_SESSION_TOKEN }),
              }
            : undefined,
      },
    },
    kubernetes: {
      // The standard KUBECONFIG wins (its first file, as a list is kubectl's merge); KUBECONFIG_PATH is the older name.
      kubeconfigPath: path.resolve(cwd, e.KUBECONFIG?.split(':').find((file) => file !== '') ?? e.KUBECONFIG_PATH),
      inCluster: e.K8S_IN_CLUSTER === undefined ? e.KUBERNETES_SERVICE_HOST !== undefined : e.K8S_IN_CLUSTER === 'true',
      namespace: e.K8S_NAMESPACE,
      helmRelease: e.HELM_RELEASE,
      helmBin: e.HELM_BIN,
      helmValuesRedactKeys: new RegExp(e.HELM_VALUES_REDACT_KEYS, 'i'),
      helmValuesGitDir: e.HELM_VALUES_GIT_DIR === undefined ? undefined : path.resolve(cwd, e.HELM_VALUES_GIT_DIR),
    },
    platformModelFile: e.PLATFORM_MODEL_FILE === undefined ? undefined : path.resolve(cwd, e.PLATFORM_MODEL_FILE),
    preflightTimeoutMs: e.PREFLIGHT_TIMEOUT_MS,
    metricsPort: e.METRICS_PORT,
    metricsHost: e.METRICS_HOST,
    workflowBundlePath: e.WORKFLOW_BUNDLE_PATH === undefined ? undefined : path.resolve(cwd, e.WORKFLOW_BUNDLE_PATH),
  };
}

/**
 * A secret from a file (a mounted Kubernetes Secret), without the trailing newline editors add;
 * a missing, unreadable or empty file is a problem naming the variable and the path.
 */
function readSecretFile(variable: string, file: string, problems: string[]): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err: unknown) {
    problems.push(
      `${variable}=${JSON.stringify(file)}: cannot read the file (${err instanceof Error ? err.message : String(err)})`,
    );
    return undefined;
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') {
    problems.push(`${variable}=${JSON.stringify(file)}: the file is empty`);
    return undefined;
  }
  return value;
}

/** `url` with `password` as its password (percent-encoded), or unchanged when there is none. */
function withPassword(url: string, password: string | undefined): string {
  if (password === undefined) return url;
  const parsed = new URL(url);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/**
 * Address, namespace and security of the Temporal connection through `@temporalio/envconfig`,
 * which reads the same variables and profiles as the `temporal` CLI and every other SDK. Our
 * defaults fill what neither the profile nor the variables give: the local dev server.
 */
function temporalFromEnvironment(
  env: NodeJS.ProcessEnv,
  cwd: string,
  problems: string[],
): { address: string; namespace: string; security: TemporalConnectionSecurity } {
  const variables: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && value !== '') variables[key] = value;
  const configFile = variables.TEMPORAL_CONFIG_FILE;
  if (configFile !== undefined) {
    // envconfig silently ignores a missing file; a named file that is missing is a mistake.
    variables.TEMPORAL_CONFIG_FILE = path.resolve(cwd, configFile);
    try {
      readFileSync(variables.TEMPORAL_CONFIG_FILE);
    } catch (err: unknown) {
      problems.push(
        `TEMPORAL_CONFIG_FILE=${JSON.stringify(configFile)}: cannot read the file (${err instanceof Error ? err.message : String(err)})`,
      );
      return { address: '127.0.0.1:7233', namespace: 'default', security: {} };
    }
  }
  let loaded: ReturnType<typeof loadClientConnectConfig>;
  try {
    loaded = loadClientConnectConfig({ overrideEnvVars: variables });
  } catch (err: unknown) {
    problems.push(
      `TEMPORAL_PROFILE=${JSON.stringify(variables.TEMPORAL_PROFILE ?? 'default')} of ${variables.TEMPORAL_CONFIG_FILE ?? 'the default Temporal config file'}: ${err instanceof Error ? err.message : String(err)}`,
    );
    return { address: '127.0.0.1:7233', namespace: 'default', security: {} };
  }
  const options = loaded.connectionOptions;
  const address = options.address ?? '127.0.0.1:7233';
  if (!hostPort.safeParse(address).success)
    problems.push(`Temporal address ${JSON.stringify(address)} (TEMPORAL_ADDRESS or the profile): expected host:port`);
  const security: TemporalConnectionSecurity = {};
  if (options.apiKey !== undefined) {
    if (typeof options.apiKey !== 'string') problems.push('TEMPORAL_API_KEY: expected a string');
    else security.apiKey = options.apiKey;
  }
  if (options.tls !== undefined && options.tls !== null) security.tls = options.tls;
  if (options.metadata !== undefined && Object.keys(options.metadata).length > 0) security.metadata = options.metadata;
  return { address, namespace: loaded.namespace ?? 'default', security };
}

/** host:port of a URL, for messages that must say where a store was looked for. */
export function addressOf(url: string): string {
  try {
    const parsed = new URL(url);
    return parsed.port ? `${parsed.hostname}:${parsed.port}` : parsed.hostname;
  } catch {
    return url;
  }
}
