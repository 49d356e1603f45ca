import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../src/errors';
import {
  DEFAULT_PLATFORM_MODEL,
  loadPlatformModel,
  organizationDataMap,
  parsePlatformModel,
} from '../src/platform/data-map';
import { ORG_ID_RULE, parseOrgId } from '../src/platform/org-id';
import { quoteClickHouseIdent, quoteClickHouseString, quotePgIdent, quotePgLiteral } from '../src/platform/quoting';

function failureOf(run: () => unknown): ApplicationFailure {
  try {
    run();
  } catch (err) {
    if (err instanceof ApplicationFailure) return err;
    throw err;
  }
  throw new Error('expected a failure');
}

describe('organization ids', () => {
  const longId = 'a'.repeat(200);
  it.each([
    ['Org-1', 'Org-1', '"Org-1"'],
    ['a;drop schema public', 'a;drop schema public', '"a;drop schema public"'],
    ['../x', '../x', '"../x"'],
    ['the empty string', '', '""'],
    ['a 200-character id', longId, `"${'a'.repeat(60)}"… (200 characters)`],
    ['ab__c', 'ab__c', '"ab__c"'],
    ['_ab', '_ab', '"_ab"'],
    ['ab_', 'ab_', '"ab_"'],
  ])('rejects %s non-retryably, quoting the id, the field and the rule', (_label, id, quoted) => {
    const failure = failureOf(() => parseOrgId(id, 'input.orgId'));
    expect(failure.type).toBe(FailureType.InvalidOrganizationId);
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toContain(`input.orgId: invalid organization id ${quoted}`);
    expect(failure.message).toContain(ORG_ID_RULE);
    expect(failure.message.length).toBeLessThan(400);
  });

  it('rejects values that are not strings, naming their type', () => {
    expect(failureOf(() => parseOrgId(42)).message).toContain('orgId: invalid organization id a value of type number');
    expect(failureOf(() => parseOrgId(null)).message).toContain('a value of type null');
  });

  it.each(['a', 'ab', 'acme_corp', 'x1_y2_z3', '0', 'a'.repeat(40)])('accepts %j', (id) => {
    expect(parseOrgId(id)).toBe(id);
  });

  it('rejects 41 characters', () => {
    expect(() => parseOrgId('a'.repeat(41))).toThrow(ORG_ID_RULE);
  });

  it('the data map refuses to build names from an invalid id', () => {
    expect(failureOf(() => organizationDataMap('a;drop schema public')).type).toBe(FailureType.InvalidOrganizationId);
  });
});

describe('quoting', () => {
  it('quotes PostgreSQL identifiers and literals', () => {
    expect(quotePgIdent('org_ab')).toBe('"org_ab"');
    expect(quotePgIdent('we"ird')).toBe('"we""ird"');
    expect(() => quotePgIdent('')).toThrow(/invalid PostgreSQL identifier/);
    expect(() => quotePgIdent('x'.repeat(64))).toThrow(/63 bytes/);
    expect(quotePgLiteral("it's \\ ok")).toBe("E'it''s \\\\ ok'");
  });

  it('quotes any ClickHouse identifier with escapes, refuses only the empty name, and escapes string literals', () => {
    expect(quoteClickHouseIdent('org_ab')).toBe('`org_ab`');
    expect(quoteClickHouseIdent('.inner.acc_mv')).toBe('`.inner.acc_mv`');
    expect(quoteClickHouseIdent('a`b\\c d')).toBe('`a\\`b\\\\c d`');
    expect(() => quoteClickHouseIdent('')).toThrow(/invalid ClickHouse identifier/);
    expect(quoteClickHouseString("o'k\\x")).toBe("'o\\'k\\\\x'");
    expect(quoteClickHouseString('a\nb')).toBe("'a\\nb'");
  });
});

describe('the organization data map', () => {
  it('names every store from the id, as the runbook describes', () => {
    const map = organizationDataMap('acme');
    expect(map.postgres.mainSchema).toBe('org_acme');
    expect(map.postgres.schemas).toEqual(['org_acme', 'org_acme__agents']);
    expect(map.postgres.sharedTables.map((t) => `${t.schema}.${t.table}(${t.keyColumn})`)).toEqual([
      'public.organizations(id)',
      'public.users(org_id)',
      'public.user_roles(org_id)',
      'public.api_keys(org_id)',
    ]);
    expect(map.clickhouse).toEqual({
      database: 'org_acme',
      chatArchiveTable: 'chat_archive',
      deadLetterTable: 'chat_dead_letter',
    });
    expect(map.queue.streams).toEqual([
      { stream: 'CHAT', subjectPrefix: 'chat.acme', filterSubject: 'chat.acme.>', maxAgeMs: 10 * 86_400_000 },
      {
        stream: 'AGENT_CONTEXT',
        subjectPrefix: 'agent_context.acme',
        filterSubject: 'agent_context.acme.>',
        maxAgeMs: 30 * 86_400_000,
      },
      { stream: 'STATS', subjectPrefix: 'stats.acme', filterSubject: 'stats.acme.>', maxAgeMs: 10 * 86_400_000 },
    ]);
    expect(map.redis.keyPatterns).toEqual(['cache:acme:*', 'session:acme:*', 'sessions:acme']);
    expect(map.redis.sessionIndexKey).toBe('sessions:acme');
    expect(map.redis.sessionKeyPrefix).toBe('session:acme:');
  });

  it("org_ab's schema rule never matches org_abc's or org_ab_x's schemas", () => {
    const ab = organizationDataMap('ab');
    expect(ab.postgres.isOrgSchema('org_ab')).toBe(true);
    expect(ab.postgres.isOrgSchema('org_ab__agents')).toBe(true);
    expect(ab.postgres.isOrgSchema('org_ab__kg_staging')).toBe(true);
    for (const other of [
      'org_abc',
      'org_abc__agents',
      'org_ab_x',
      'org_ab_x__agents',
      'org_a',
      'org_ab_',
      'org_ab__',
      'org_ab__Agents',
      'xorg_ab',
    ]) {
      expect([other, ab.postgres.isOrgSchema(other)]).toEqual([other, false]);
    }
    // And the other way round: the longer ids do not claim org_ab's schemas.
    for (const id of ['abc', 'ab_x', 'a']) {
      const map = organizationDataMap(id);
      expect(map.postgres.isOrgSchema('org_ab')).toBe(false);
      expect(map.postgres.isOrgSchema('org_ab__agents')).toBe(false);
    }
  });

  it('maps the id out of names so a clone reads the same', () => {
    const map = organizationDataMap('ab');
    expect(map.mapOrgOut('chat.ab.room_1')).toBe('chat.{org}.room_1');
    expect(map.mapOrgOut('cache:ab:entity:3')).toBe('cache:{org}:entity:3');
    expect(map.mapOrgOut('session:ab:f00')).toBe('session:{org}:f00');
    expect(map.mapOrgOut('sessions:ab')).toBe('sessions:{org}');
    expect(map.mapOrgOut('org_ab__agents')).toBe('org_{org}__agents');
    expect(map.mapOrgOut('chat.abc.room_1')).toBe('chat.abc.room_1');
    expect(map.mapOrgOut('cache:abc:x')).toBe('cache:abc:x');
  });

  it('loads overrides from a JSON file, keeping defaults for what it leaves out', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'model-'));
    const file = path.join(dir, 'model.json');
    await writeFile(
      file,
      JSON.stringify({
        postgres: { schemaPrefix: 'tenant_', suffixSchemas: ['kg_staging', 'agents'] },
        redis: { keyPatterns: ['c:{org}:*'] },
      }),
    );
    const model = await loadPlatformModel(file);
    expect(model.postgres.schemaPrefix).toBe('tenant_');
    expect(model.postgres.sharedTables).toEqual(DEFAULT_PLATFORM_MODEL.postgres.sharedTables);
    expect(model.clickhouse).toEqual(DEFAULT_PLATFORM_MODEL.clickhouse);
    expect(organizationDataMap('acme', model).postgres.schemas).toEqual([
      'tenant_acme',
      'tenant_acme__kg_staging',
      'tenant_acme__agents',
    ]);
    expect(organizationDataMap('acme', model).redis.keyPatterns).toEqual(['c:acme:*']);
    expect(await loadPlatformModel(undefined)).toBe(DEFAULT_PLATFORM_MODEL);
    expect(await loadPlatformModel('')).toBe(DEFAULT_PLATFORM_MODEL);
  });

  it('rejects an invalid model, listing every problem with its path', () => {
    const failure = failureOf(() =>
      parsePlatformModel({
        postgres: { schemaPrefix: 'Bad-Prefix' },
        redis: { keyPatterns: ['cache:{org}*'] },
        extra: 1,
      }),
    );
    expect(failure.type).toBe(FailureType.InvalidInput);
    expect(failure.message).toMatch(/extra|Unrecognized/);
    const second = failureOf(() =>
      parsePlatformModel({ postgres: { schemaPrefix: 'Bad-Prefix' }, redis: { keyPatterns: ['cache:{org}*'] } }),
    );
    expect(second.message).toContain('postgres.schemaPrefix');
    expect(second.message).toContain('redis.keyPatterns.0');
  });

  it('rejects a model file that is not JSON, naming the file', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'model-'));
    const file = path.join(dir, 'broken.json');
    await writeFile(file, '{ nope');
    await expect(loadPlatformModel(file)).rejects.toThrow(`platform model file ${file} is not JSON`);
  });
});
