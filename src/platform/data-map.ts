import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { FailureType, permanentFailure } from '../errors';
import { parseOrgId } from './org-id';

/**
 * The placeholder for the organization id in name templates (Redis key patterns) and in
 * fingerprint object names, where the id is mapped out so a clone under another id compares equal.
 */
export const ORG_PLACEHOLDER = '{org}';

const pgName = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, {
  message: 'expected a lower-case PostgreSQL name (a-z, 0-9, _; at most 63 bytes)',
});
const chName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'expected a ClickHouse name matching ^[A-Za-z_][A-Za-z0-9_]*$' });
const streamName = z
  .string()
  .regex(/^[A-Za-z0-9_-]{1,64}$/, { message: 'expected a JetStream stream name (letters, digits, _ and -)' });
const subjectToken = z
  .string()
  .regex(/^[A-Za-z0-9_-]+$/, { message: 'expected one subject token (letters, digits, _ and -)' });

/**
 * A Redis key template: contains `{org}` exactly once, followed by the end or by a character no id
 * can contain, so `cache:ab:*` never matches `cache:abc:…` or `cache:ab_x:…`. Glob characters are
 * only allowed as a trailing `*`.
 */
const redisTemplate = z.string().refine(
  (t) => {
    const at = t.indexOf(ORG_PLACEHOLDER);
    if (at < 0 || t.indexOf(ORG_PLACEHOLDER, at + 1) >= 0) return false;
    const after = t.slice(at + ORG_PLACEHOLDER.length);
    // `cache:{org}*` would match `cache:abc…` for org `ab`: the next character must end the id.
    if (after.length > 0 && /^[a-z0-9_*?[\]\\]/.test(after)) return false;
    const body = t.endsWith('*') ? t.slice(0, -1) : t;
    return !/[*?[\]\\]/.test(body.replace(ORG_PLACEHOLDER, ''));
  },
  {
    message:
      'expected a key template with "{org}" once, followed by a delimiter such as ":" or the end, and no glob characters but a trailing "*"',
  },
);

const sharedTableSchema = z.object({
  schema: pgName,
  table: pgName,
  /** The column that holds the organization id (the primary key for the organizations table). */
  keyColumn: pgName,
});

const streamSchema = z.object({
  stream: streamName,
  /** First subject token: the stream captures `<root>.>` and an organization owns `<root>.<id>.>`. */
  subjectRoot: subjectToken,
  /** Retention of the stream, in milliseconds. */
  maxAgeMs: z.number().int().positive(),
});

/** The full, validated platform model: where every organization's data lives. */
const platformModelSchema = z.object({
  postgres: z.object({
    /** Main schema of an organization is `<schemaPrefix><id>`. */
    schemaPrefix: pgName,
    /**
     * Between the main schema name and a suffix. The default `__` can never occur in an id, so no
     * organization's suffix schema can look like another organization's main or suffix schema.
     */
    suffixSeparator: z.string().regex(/^_+$/, { message: 'expected one or more "_"' }),
    /** Suffix schemas an organization has besides its main schema, e.g. `agents` → `org_<id>__agents`. */
    suffixSchemas: z.array(pgName),
    /** Shared tables holding organization rows, parents before children (foreign-key order). */
    sharedTables: z.array(sharedTableSchema).min(1),
  }),
  clickhouse: z.object({
    /** Database of an organization is `<databasePrefix><id>`. */
    databasePrefix: chName,
    chatArchiveTable: chName,
    deadLetterTable: chName,
  }),
  queue: z.object({ streams: z.array(streamSchema) }),
  redis: z.object({
    /** Templates of the organization's keys, `{org}` standing for the id; SCAN MATCH patterns once filled. */
    keyPatterns: z.array(redisTemplate).min(1),
    /** Set of the organization's session ids, so every session can be revoked without a SCAN. */
    sessionIndexKey: redisTemplate,
    /** A session's key is this prefix followed by the session id. */
    sessionKeyPrefix: redisTemplate,
  }),
});

/** Where every organization's data lives, per store. See {@link DEFAULT_PLATFORM_MODEL}. */
export type PlatformModel = z.infer<typeof platformModelSchema>;

const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * The platform as the runbook (`backup-and-recovery.txt`) describes it. One deliberate deviation:
 * suffix schemas are `org_<id>__<suffix>` (double underscore) instead of the runbook's
 * `org_<id>_<suffix>`, because with a single `_` the schema `org_ab_x` could be organization `ab`'s
 * suffix schema `x` or organization `ab_x`'s main schema. Ids cannot contain `__`, so the double
 * separator is unambiguous. A deployment with other names overrides this with `PLATFORM_MODEL_FILE`.
 */
export const DEFAULT_PLATFORM_MODEL: PlatformModel = {
  postgres: {
    schemaPrefix: 'org_',
    suffixSeparator: '__',
    suffixSchemas: ['agents'],
    sharedTables: [
      { schema: 'public', table: 'organizations', keyColumn: 'id' },
      { schema: 'public', table: 'users', keyColumn: 'org_id' },
      { schema: 'public', table: 'user_roles', keyColumn: 'org_id' },
      { schema: 'public', table: 'api_keys', keyColumn: 'org_id' },
    ],
  },
  clickhouse: { databasePrefix: 'org_', chatArchiveTable: 'chat_archive', deadLetterTable: 'chat_dead_letter' },
  queue: {
    streams: [
      { stream: 'CHAT', subjectRoot: 'chat', maxAgeMs: 10 * DAY_MS },
      { stream: 'AGENT_CONTEXT', subjectRoot: 'agent_context', maxAgeMs: 30 * DAY_MS },
      { stream: 'STATS', subjectRoot: 'stats', maxAgeMs: 10 * DAY_MS },
    ],
  },
  redis: {
    keyPatterns: ['cache:{org}:*', 'session:{org}:*', 'sessions:{org}'],
    sessionIndexKey: 'sessions:{org}',
    sessionKeyPrefix: 'session:{org}:',
  },
};

/** A model file may give any section partially; what it leaves out keeps the default. */
const platformModelFileSchema = z
  .object({
    postgres: platformModelSchema.shape.postgres.partial().strict().optional(),
    clickhouse: platformModelSchema.shape.clickhouse.partial().strict().optional(),
    queue: platformModelSchema.shape.queue.partial().strict().optional(),
    redis: platformModelSchema.shape.redis.partial().strict().optional(),
  })
  .strict();

/**
 * Validates a model given as a plain object (parsed JSON), filling what it leaves out from
 * {@link DEFAULT_PLATFORM_MODEL}.
 * @throws a non-retryable `InvalidInput` failure listing every problem with its JSON path.
 */
export function parsePlatformModel(value: unknown, source = 'platform model'): PlatformModel {
  const file = platformModelFileSchema.safeParse(value);
  const problems = (issues: readonly z.core.$ZodIssue[]) =>
    issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  if (!file.success)
    throw permanentFailure(FailureType.InvalidInput, `${source} is invalid: ${problems(file.error.issues)}`);
  const d = DEFAULT_PLATFORM_MODEL;
  const merged = {
    postgres: { ...d.postgres, ...file.data.postgres },
    clickhouse: { ...d.clickhouse, ...file.data.clickhouse },
    queue: { ...d.queue, ...file.data.queue },
    redis: { ...d.redis, ...file.data.redis },
  };
  const full = platformModelSchema.safeParse(merged);
  if (!full.success)
    throw permanentFailure(FailureType.InvalidInput, `${source} is invalid: ${problems(full.error.issues)}`);
  return full.data;
}

/**
 * Loads the platform model from a JSON file, or returns the default when `path` is unset or empty.
 * @param path usually `process.env.PLATFORM_MODEL_FILE`.
 * @throws a non-retryable `InvalidInput` failure when the file cannot be read, is not JSON, or
 *   does not describe a valid model (every problem listed).
 */
export async function loadPlatformModel(path?: string): Promise<PlatformModel> {
  if (path === undefined || path === '') return DEFAULT_PLATFORM_MODEL;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `cannot read platform model file ${path}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw permanentFailure(
      FailureType.InvalidInput,
      `platform model file ${path} is not JSON: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  return parsePlatformModel(json, `platform model file ${path}`);
}

/** One shared table and the column that selects an organization's rows. */
export interface SharedTable {
  schema: string;
  table: string;
  keyColumn: string;
}

/** One stream and the part of it that belongs to the organization. */
export interface OrganizationStream {
  stream: string;
  /** `chat.<id>`: the organization's subjects start with this and a `.`. */
  subjectPrefix: string;
  /** `chat.<id>.>`: the filter subject of the organization's messages. */
  filterSubject: string;
  /** Retention of the stream, in milliseconds. */
  maxAgeMs: number;
}

/** One Redis key pattern, filled (`pattern`) and as a template (`template`). */
export interface OrganizationKeyPattern {
  /** SCAN MATCH pattern for this organization, e.g. `cache:acme:*`. */
  pattern: string;
  /** The same with the id mapped out, e.g. `cache:{org}:*`. */
  template: string;
}

/** Every name that belongs to one organization, in every store. Built only by {@link organizationDataMap}. */
export interface OrganizationDataMap {
  orgId: string;
  postgres: {
    /** `org_<id>` */
    mainSchema: string;
    /** Declared schemas: the main schema, then `org_<id>__<suffix>` for each declared suffix. */
    schemas: string[];
    /** `org_<id>__`: what every suffix schema of the organization starts with. */
    suffixSchemaPrefix: string;
    /** True for the main schema and for any `org_<id>__<suffix>` schema, declared or not. */
    isOrgSchema(name: string): boolean;
    /** Shared tables, parents first. */
    sharedTables: SharedTable[];
  };
  clickhouse: { database: string; chatArchiveTable: string; deadLetterTable: string };
  queue: { streams: OrganizationStream[] };
  redis: {
    /** SCAN MATCH patterns covering every key of the organization (including the session index). */
    keyPatterns: string[];
    /** The same patterns with their templates, for mapping the id out of keys. */
    patterns: OrganizationKeyPattern[];
    sessionIndexKey: string;
    sessionKeyPrefix: string;
  };
  /**
   * Replaces the organization id in a name of this map (schema, database, subject or key) by
   * `{org}`, so names of a clone compare equal. Names that do not belong to the organization are
   * returned unchanged.
   */
  mapOrgOut(name: string): string;
}

const SUFFIX_PATTERN = /^[a-z0-9_]+$/;

/**
 * Where organization `orgId`'s data lives in every store.
 * @throws a non-retryable `InvalidOrganizationId` failure when `orgId` breaks {@link ORG_ID_RULE}.
 */
export function organizationDataMap(orgId: string, model: PlatformModel = DEFAULT_PLATFORM_MODEL): OrganizationDataMap {
  const id = parseOrgId(orgId);
  const pg = model.postgres;
  const mainSchema = `${pg.schemaPrefix}${id}`;
  const suffixStart = `${mainSchema}${pg.suffixSeparator}`;
  const schemas = [mainSchema, ...pg.suffixSchemas.map((s) => `${suffixStart}${s}`)];
  const tooLong = schemas.find((s) => Buffer.byteLength(s) > 63);
  if (tooLong !== undefined) {
    throw permanentFailure(
      FailureType.InvalidOrganizationId,
      `orgId: schema name ${tooLong} of organization ${JSON.stringify(id)} exceeds PostgreSQL's 63 bytes; use a shorter id`,
    );
  }
  const fill = (template: string) => template.replace(ORG_PLACEHOLDER, id);
  const patterns = model.redis.keyPatterns.map((template) => ({ template, pattern: fill(template) }));
  const streams = model.queue.streams.map((s) => ({
    stream: s.stream,
    subjectPrefix: `${s.subjectRoot}.${id}`,
    filterSubject: `${s.subjectRoot}.${id}.>`,
    maxAgeMs: s.maxAgeMs,
  }));
  const database = `${model.clickhouse.databasePrefix}${id}`;

  // Longest first, so `org_<id>__agents` maps as a whole before `org_<id>` would.
  const replacements: Array<[string, string]> = [
    ...schemas.map((s): [string, string] => [s, s.replace(mainSchema, `${pg.schemaPrefix}${ORG_PLACEHOLDER}`)]),
    [database, `${model.clickhouse.databasePrefix}${ORG_PLACEHOLDER}`],
    ...streams.map((s): [string, string] => [
      `${s.subjectPrefix}.`,
      `${s.subjectPrefix.slice(0, -id.length)}${ORG_PLACEHOLDER}.`,
    ]),
    ...patterns.map((p): [string, string] => {
      const literal = p.pattern.endsWith('*') ? p.pattern.slice(0, -1) : p.pattern;
      const template = p.template.endsWith('*') ? p.template.slice(0, -1) : p.template;
      return [literal, template];
    }),
  ];
  replacements.sort((a, b) => b[0].length - a[0].length);

  return {
    orgId: id,
    postgres: {
      mainSchema,
      suffixSchemaPrefix: suffixStart,
      schemas,
      isOrgSchema: (name) =>
        name === mainSchema || (name.startsWith(suffixStart) && SUFFIX_PATTERN.test(name.slice(suffixStart.length))),
      sharedTables: pg.sharedTables.map((t) => ({ ...t })),
    },
    clickhouse: {
      database,
      chatArchiveTable: model.clickhouse.chatArchiveTable,
      deadLetterTable: model.clickhouse.deadLetterTable,
    },
    queue: { streams },
    redis: {
      keyPatterns: patterns.map((p) => p.pattern),
      patterns,
      sessionIndexKey: fill(model.redis.sessionIndexKey),
      sessionKeyPrefix: fill(model.redis.sessionKeyPrefix),
    },
    mapOrgOut(name) {
      for (const [literal, template] of replacements) {
        // Exact names (schemas, databases, the session index) map only when equal; prefixes of
        // subjects and keys map at the start. Neither can catch another org: ids are delimited.
        if (name === literal) return template;
        if ((literal.endsWith('.') || literal.endsWith(':')) && name.startsWith(literal))
          return template + name.slice(literal.length);
        if (name.startsWith(`${literal}.`)) return template + name.slice(literal.length);
      }
      return name;
    },
  };
}
