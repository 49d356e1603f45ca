import {
  classifyClickHouseEngine,
  consumesFromOutside,
  dataObjectName,
  tieInnerTables,
} from '../src/platform/clickhouse-catalog';
import { planClickHouseRestore } from '../src/platform/clickhouse-restore-plan';
import {
  checkClickHouseStatementMovable,
  checkNoHiddenSecrets,
  assertRestorableStatement,
  ClickHouseDdlRefused,
  describeClickHouseStatement,
  detachStreamingTable,
  retargetCreateStatement,
} from '../src/platform/clickhouse-ddl';
import { ClickHouseSqlSyntaxError, tokenizeClickHouse } from '../src/platform/clickhouse-tokens';
import { decodeObjectFileName, encodeObjectFileName } from '../src/platform/object-file-name';
import { quoteClickHouseIdent, quoteClickHouseString } from '../src/platform/quoting';

describe('the ClickHouse lexer', () => {
  it('gives the statement back when its tokens are joined, whatever it holds', () => {
    const sql =
      "CREATE TABLE `a``b`.\"c\\\"d\" (`the key` String DEFAULT 'it''s \\'x\\' -- no', n UInt8 /* a /* nested */ comment */) -- tail\nENGINE = Memory";
    expect(
      tokenizeClickHouse(sql)
        .map((t) => t.text)
        .join(''),
    ).toBe(sql);
  });

  it('unescapes identifiers and strings as ClickHouse reads them', () => {
    const values = tokenizeClickHouse("`we\\`ird` \"dq\"\"x\" 'a\\nb' 'o''k' '\\xC3\\xBC' `ü/na.me`")
      .filter((t) => t.kind !== 'space')
      .map((t) => [t.kind, t.value]);
    expect(values).toEqual([
      ['quoted', 'we`ird'],
      ['quoted', 'dq"x'],
      ['string', 'a\nb'],
      ['string', "o'k"],
      ['string', 'ü'],
      ['quoted', 'ü/na.me'],
    ]);
  });

  it('does not see names inside strings or comments as identifiers', () => {
    const kinds = tokenizeClickHouse("SELECT 'org_a.t' -- org_a.t\n/* org_a.t */").map((t) => t.kind);
    expect(kinds).toEqual(['word', 'space', 'string', 'space', 'comment', 'space', 'comment']);
  });

  it('refuses an unterminated quote or comment', () => {
    expect(() => tokenizeClickHouse('SELECT `abc')).toThrow(ClickHouseSqlSyntaxError);
    expect(() => tokenizeClickHouse("SELECT 'abc\\'")).toThrow(ClickHouseSqlSyntaxError);
    expect(() => tokenizeClickHouse('SELECT /* /* */')).toThrow(ClickHouseSqlSyntaxError);
  });

  it('quoting and lexing round-trip any name', () => {
    for (const name of [
      '.inner.acc_mv',
      'the key',
      'odd/na.me ü',
      'a`b',
      'back\\slash',
      "quo'te",
      'line\nbreak',
      'tab\tx',
      'nul\0x',
      '日本語',
    ]) {
      const [ident] = tokenizeClickHouse(quoteClickHouseIdent(name));
      expect(ident).toMatchObject({ kind: 'quoted', value: name });
      const [str] = tokenizeClickHouse(quoteClickHouseString(name));
      expect(str).toMatchObject({ kind: 'string', value: name });
    }
    expect(() => quoteClickHouseIdent('')).toThrow(/cannot be empty/);
  });
});

describe('retargetCreateStatement', () => {
  const move = (sql: string) => retargetCreateStatement(sql, 'org_a', 'org_b');

  it('moves qualified names however they are quoted, and never a longer name that starts the same', () => {
    expect(
      move(
        'CREATE VIEW org_a.v (x UInt8) AS SELECT x FROM `org_a`.t JOIN "org_a".u USING x JOIN org_abc.w USING x JOIN my_org_a.z USING x',
      ),
    ).toBe(
      'CREATE VIEW `org_b`.v (x UInt8) AS SELECT x FROM `org_b`.t JOIN `org_b`.u USING x JOIN org_abc.w USING x JOIN my_org_a.z USING x',
    );
  });

  it('moves the database as an engine argument (Buffer, Merge, Distributed) and as a whole string', () => {
    expect(
      move(
        'CREATE TABLE org_a.buf (id UInt64) ENGINE = Buffer(org_a, hits, 16, 10, 100, 10000, 1000000, 10000000, 100000000)',
      ),
    ).toBe(
      'CREATE TABLE `org_b`.buf (id UInt64) ENGINE = Buffer(`org_b`, hits, 16, 10, 100, 10000, 1000000, 10000000, 100000000)',
    );
    expect(move("CREATE TABLE org_a.m (id UInt64) ENGINE = Merge(org_a, '^hits')")).toBe(
      "CREATE TABLE `org_b`.m (id UInt64) ENGINE = Merge(`org_b`, '^hits')",
    );
    expect(move("CREATE TABLE org_a.d (id UInt64) ENGINE = Distributed(c, 'org_a', hits, rand())")).toBe(
      "CREATE TABLE `org_b`.d (id UInt64) ENGINE = Distributed(c, 'org_b', hits, rand())",
    );
  });

  it("moves a dictionary's source database and dictGet's qualified names", () => {
    expect(
      move(
        "CREATE DICTIONARY org_a.d (k UInt64, v String) PRIMARY KEY k SOURCE(CLICKHOUSE(DB 'org_a' TABLE 'src')) LIFETIME(0) LAYOUT(FLAT())",
      ),
    ).toBe(
      "CREATE DICTIONARY `org_b`.d (k UInt64, v String) PRIMARY KEY k SOURCE(CLICKHOUSE(DB 'org_b' TABLE 'src')) LIFETIME(0) LAYOUT(FLAT())",
    );
    expect(move("CREATE TABLE org_a.t (k UInt64, v String DEFAULT dictGet('org_a.d', 'v', k)) ENGINE = Memory")).toBe(
      "CREATE TABLE `org_b`.t (k UInt64, v String DEFAULT dictGet('org_b.d', 'v', k)) ENGINE = Memory",
    );
  });

  it('leaves names inside comments, COMMENT strings and member names alone', () => {
    expect(move("CREATE TABLE org_a.org_a (x UInt8 COMMENT 'copied from org_a') ENGINE = Memory /* org_a */")).toBe(
      "CREATE TABLE `org_b`.org_a (x UInt8 COMMENT 'copied from org_a') ENGINE = Memory /* org_a */",
    );
  });

  it("drops the source's table and inner-table UUIDs, so an Atomic copy never reuses them", () => {
    expect(
      move(
        "CREATE MATERIALIZED VIEW org_a.mv UUID '11111111-1111-1111-1111-111111111111' TO INNER UUID '22222222-2222-2222-2222-222222222222' (k String) ENGINE = MergeTree ORDER BY k AS SELECT k FROM org_a.t",
      ),
    ).toBe('CREATE MATERIALIZED VIEW `org_b`.mv (k String) ENGINE = MergeTree ORDER BY k AS SELECT k FROM `org_b`.t');
  });

  it('refuses, naming the reason, what it cannot move safely', () => {
    const refusals: Array<[string, RegExp]> = [
      [
        "CREATE TABLE org_a.r (id UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/org_a/r', '{replica}') ORDER BY id",
        /inside the string/,
      ],
      ['CREATE VIEW org_a.v AS SELECT 1 AS org_a', /neither a qualified name nor an engine argument/],
      ['CREATE TABLE org_c.t (id UInt64) ENGINE = Memory', /does not create an object of database org_a/],
      ['CREATE TABLE t (id UInt64) ENGINE = Memory', /database\.name/],
      ['INSERT INTO org_a.t VALUES (1)', /not a CREATE statement/],
    ];
    for (const [sql, reason] of refusals) {
      expect(() => move(sql)).toThrow(ClickHouseDdlRefused);
      expect(() => move(sql)).toThrow(reason);
    }
  });
});

describe('describeClickHouseStatement', () => {
  it('reads the kind, name, engine, TO table and references of SHOW CREATE output of ClickHouse 18', () => {
    expect(
      describeClickHouseStatement(
        'CREATE TABLE zz.`.inner.acc_mv` ( k String,  n UInt64) ENGINE = SummingMergeTree ORDER BY k SETTINGS index_granularity = 8192',
      ),
    ).toMatchObject({
      kind: 'table',
      database: 'zz',
      name: '.inner.acc_mv',
      engine: 'SummingMergeTree',
    });
    const mv = describeClickHouseStatement(
      'CREATE MATERIALIZED VIEW zz.to_mv TO zz.target ( k String,  n UInt64) AS SELECT `the key` AS k, count() AS n FROM zz.src  GROUP BY k',
    );
    expect(mv).toMatchObject({
      kind: 'materialized-view',
      name: 'to_mv',
      to: { database: 'zz', name: 'target' },
      engine: undefined,
    });
    expect(mv.references).toEqual([
      { database: 'zz', name: 'target' },
      { database: 'zz', name: 'src' },
    ]);
    const buffer = describeClickHouseStatement(
      'CREATE TABLE zz.buf ( id UInt64) ENGINE = Buffer(zz, src, 16, 10, 100, 10000, 1000000, 10000000, 100000000)',
    );
    expect(buffer.engine).toBe('Buffer');
    expect(buffer.engineArguments.map((a) => a.map((t) => t.text).join(''))).toEqual([
      'zz',
      'src',
      '16',
      '10',
      '100',
      '10000',
      '1000000',
      '10000000',
      '100000000',
    ]);
    expect(describeClickHouseStatement('CREATE VIEW zz.v ( id UInt64) AS SELECT * FROM zz.src')).toMatchObject({
      kind: 'view',
      engine: undefined,
    });
  });
});

describe('object file names', () => {
  it('are one path segment the store accepts, reversible, and distinct where names differ only in case', () => {
    const names = [
      'kg_nodes',
      '.inner.acc_mv',
      '..',
      'odd/na.me ü',
      'the key',
      'Events',
      'events',
      '_x',
      '-2E',
      '_-2E',
      '日本語',
      'a\\b',
    ];
    const encoded = names.map(encodeObjectFileName);
    expect(encoded.slice(0, 2)).toEqual(['kg_nodes', '_-2Einner-2Eacc_mv']);
    for (const [i, e] of encoded.entries()) {
      expect(e).toMatch(/^[A-Za-z0-9_][A-Za-z0-9_-]*$/);
      expect(decodeObjectFileName(e)).toBe(names[i]);
    }
    expect(new Set(encoded.map((e) => e.toLowerCase())).size).toBe(names.length);
    for (const bad of ['a/b', '_x', '-41', 'a-4']) expect(() => decodeObjectFileName(bad)).toThrow(/not an encoded/);
  });
});

describe('ClickHouse engine classes', () => {
  it('back up rows only of engines that own them, keep forwarding engines as DDL, and refuse unknown ones', () => {
    for (const e of [
      'MergeTree',
      'ReplacingMergeTree',
      'SummingMergeTree',
      'AggregatingMergeTree',
      'CollapsingMergeTree',
      'VersionedCollapsingMergeTree',
      'ReplicatedMergeTree',
      'TinyLog',
      'StripeLog',
      'Log',
      'Memory',
      'Set',
      'Join',
    ]) {
      expect([e, classifyClickHouseEngine(e)]).toEqual([e, 'data']);
    }
    for (const e of [
      'Buffer',
      'Distributed',
      'Merge',
      'URL',
      'MySQL',
      'PostgreSQL',
      'S3',
      'Kafka',
      'Null',
      'Dictionary',
    ])
      expect([e, classifyClickHouseEngine(e)]).toEqual([e, 'ddl-only']);
    for (const e of ['View', 'MaterializedView']) expect(classifyClickHouseEngine(e)).toBe('view');
    for (const e of ['File', 'KeeperMap', 'SomethingNew']) expect(classifyClickHouseEngine(e)).toBe('unknown');
  });
});

describe('planClickHouseRestore', () => {
  const ddl = [
    {
      object: 'a_small_even',
      statement: 'CREATE VIEW zz.a_small_even (id UInt64) AS SELECT id FROM zz.aa_even WHERE id < 10',
    },
    {
      object: 'aa_even',
      statement: 'CREATE VIEW zz.aa_even (id UInt64) AS SELECT id FROM zz.zz_source WHERE id % 2 = 0',
    },
    {
      object: 'acc_mv',
      statement:
        'CREATE MATERIALIZED VIEW zz.acc_mv (k String, n UInt64) ENGINE = SummingMergeTree ORDER BY k AS SELECT k, count() AS n FROM zz.zz_source GROUP BY k',
    },
    {
      object: 'buf',
      statement:
        'CREATE TABLE zz.buf (id UInt64) ENGINE = Buffer(zz, zz_source, 16, 10, 100, 10000, 1000000, 10000000, 100000000)',
    },
    {
      object: 'b_to_mv',
      statement: 'CREATE MATERIALIZED VIEW zz.b_to_mv TO zz.copy (id UInt64) AS SELECT id FROM zz.zz_source',
    },
    { object: 'copy', statement: 'CREATE TABLE zz.copy (id UInt64) ENGINE = MergeTree ORDER BY id' },
    { object: 'zz_source', statement: 'CREATE TABLE zz.zz_source (id UInt64) ENGINE = MergeTree ORDER BY id' },
  ];
  const describeStep = (s: ReturnType<typeof planClickHouseRestore>[number]) =>
    `${s.kind} ${s.object}${s.kind === 'load' ? ` ${s.into}` : ''}`;

  it('creates tables that own rows, loads them, then DDL-only tables, then views in dependency order with MV rows right after their view', () => {
    expect(planClickHouseRestore(ddl, ['zz_source', 'copy', 'acc_mv', 'buf'], 'zz').map(describeStep)).toEqual([
      'create copy',
      'create zz_source',
      'load copy table',
      'load zz_source table',
      'create buf',
      'skip buf',
      'create aa_even',
      'create a_small_even',
      'create acc_mv',
      'load acc_mv inner-table-of-view',
      'create b_to_mv',
    ]);
  });

  it('refuses rows without a table and a statement filed under another name', () => {
    expect(() => planClickHouseRestore(ddl, ['ghost'], 'zz')).toThrow(/holds rows of ghost/);
    expect(() =>
      planClickHouseRestore([{ object: 'x', statement: 'CREATE TABLE zz.y (id UInt8) ENGINE = Memory' }], [], 'zz'),
    ).toThrow(/filed under x creates y/);
  });
});

describe('tieInnerTables', () => {
  it("files an implicit inner table under its view: by name on Ordinary databases, by the view's UUID on Atomic ones", () => {
    const nil = '00000000-0000-0000-0000-000000000000';
    const uuid = '5f1c2d3e-0000-4000-8000-000000000001';
    const objects = tieInnerTables([
      { name: '.inner.acc_mv', engine: 'SummingMergeTree', uuid: nil },
      { name: `.inner_id.${uuid}`, engine: 'MergeTree', uuid: '5f1c2d3e-0000-4000-8000-0000000000ff' },
      { name: '.inner.gone', engine: 'MergeTree', uuid: nil },
      { name: 'acc_mv', engine: 'MaterializedView', uuid: nil },
      { name: 'atomic_mv', engine: 'MaterializedView', uuid },
      { name: 'buf', engine: 'Buffer', uuid: nil },
    ]);
    expect(objects.map((o) => [o.name, o.engineClass, dataObjectName(o)])).toEqual([
      ['.inner.acc_mv', 'data', 'acc_mv'],
      [`.inner_id.${uuid}`, 'data', 'atomic_mv'],
      ['.inner.gone', 'data', '.inner.gone'],
      ['acc_mv', 'view', 'acc_mv'],
      ['atomic_mv', 'view', 'atomic_mv'],
      ['buf', 'ddl-only', 'buf'],
    ]);
  });
});

describe('streaming tables in a copy', () => {
  it('are consumers of outside systems, unlike forwarding or data engines', () => {
    for (const engine of ['Kafka', 'RabbitMQ', 'NATS', 'S3Queue', 'AzureQueue', 'FileLog', 'MaterializedPostgreSQL'])
      expect([engine, consumesFromOutside(engine)]).toEqual([engine, true]);
    for (const engine of ['MergeTree', 'Buffer', 'Distributed', 'S3', 'URL', 'MySQL', 'View', undefined])
      expect([engine, consumesFromOutside(engine)]).toEqual([engine, false]);
  });

  it('are detached to ENGINE = Null with their columns, whatever form the engine clause has', () => {
    // ClickHouse 18 prints the arguments form; modern servers the SETTINGS form, with a COMMENT after.
    expect(
      detachStreamingTable(
        "CREATE TABLE org_a.events (`engine` String, `the key` UInt8, n Nullable(Int64)) ENGINE = Kafka('b1:9092,b2:9092', 'events', 'org_a_group', 'JSONEachRow')",
      ),
    ).toBe('CREATE TABLE org_a.events (`engine` String, `the key` UInt8, n Nullable(Int64)) ENGINE = Null');
    expect(
      detachStreamingTable(
        "CREATE TABLE org_a.q\n(\n    `id` UInt64\n)\nENGINE = RabbitMQ\nSETTINGS rabbitmq_host_port = 'mq:5672', rabbitmq_exchange_name = 'x', rabbitmq_format = 'JSONEachRow'\nCOMMENT 'from the queue'",
      ),
    ).toBe('CREATE TABLE org_a.q\n(\n    `id` UInt64\n)\nENGINE = Null');
    const detached = detachStreamingTable(
      "CREATE TABLE org_a.events (id UInt64) ENGINE = Kafka SETTINGS kafka_broker_list = 'b:9092', kafka_topic_list = 't', kafka_group_name = 'g', kafka_format = 'JSONEachRow'",
    );
    expect(describeClickHouseStatement(detached)).toMatchObject({ kind: 'table', name: 'events', engine: 'Null' });
    expect(detached).not.toMatch(/kafka_group_name/);
  });

  it('move to another database even when their engine clause names the source (a consumer group named after it); into the same database nothing is refused', () => {
    const kafka =
      "CREATE TABLE org_a.events (id UInt64) ENGINE = Kafka('b:9092', 'events', 'org_a_group', 'JSONEachRow')";
    expect(() => retargetCreateStatement(kafka, 'org_a', 'org_b')).toThrow(ClickHouseDdlRefused);
    expect(() => checkClickHouseStatementMovable(kafka, 'org_a')).not.toThrow();
    expect(retargetCreateStatement(detachStreamingTable(kafka), 'org_a', 'org_b')).toBe(
      'CREATE TABLE `org_b`.events (id UInt64) ENGINE = Null',
    );
    expect(retargetCreateStatement(kafka, 'org_a', 'org_a')).toBe(kafka);
    expect(
      retargetCreateStatement(
        "CREATE TABLE org_a.t UUID '5f1c2d3e-0000-4000-8000-000000000001' (id UInt64) ENGINE = Kafka('b:9092', 't', 'org_a_g', 'CSV')",
        'org_a',
        'org_a',
      ),
    ).toBe("CREATE TABLE org_a.t (id UInt64) ENGINE = Kafka('b:9092', 't', 'org_a_g', 'CSV')");
  });

  it('refuses what is not a table with an engine', () => {
    expect(() => detachStreamingTable('CREATE VIEW org_a.v AS SELECT 1')).toThrow(ClickHouseDdlRefused);
  });
});

describe('secrets the server masked', () => {
  const mysql = (password: string) =>
    `CREATE TABLE org_a.remote (id UInt64) ENGINE = MySQL('db:3306', 'shop', 'orders', 'reader', '${password}')`;

  it("refuse the backup: a table whose password is '[HIDDEN]' could never be restored", () => {
    expect(() => checkNoHiddenSecrets(mysql('[HIDDEN]'))).toThrow(/masked a secret.*displaySecretsInShowAndSelect/);
    expect(() => checkClickHouseStatementMovable(mysql('[HIDDEN]'), 'org_a')).toThrow(ClickHouseDdlRefused);
    expect(() =>
      checkNoHiddenSecrets(
        "CREATE DICTIONARY org_a.d (id UInt64, v String) PRIMARY KEY id SOURCE(CLICKHOUSE(HOST 'h' USER 'u' PASSWORD '[HIDDEN]' TABLE 't')) LIFETIME(0) LAYOUT(FLAT())",
      ),
    ).toThrow(ClickHouseDdlRefused);
  });

  it('let a real password, and the words in a comment, through', () => {
    expect(() => checkNoHiddenSecrets(mysql('s3cret'))).not.toThrow();
    expect(() => checkClickHouseStatementMovable(mysql('s3cret'), 'org_a')).not.toThrow();
    expect(() =>
      checkNoHiddenSecrets("CREATE TABLE org_a.t (id UInt64 COMMENT '[HIDDEN]') ENGINE = Memory COMMENT '[HIDDEN]'"),
    ).not.toThrow();
  });
});

describe('a statement read back from a backup must be one CREATE in its own database (assertRestorableStatement)', () => {
  const own = 'org_acme';
  const refusal = (statement: string) => {
    try {
      assertRestorableStatement(statement, own);
      return 'accepted';
    } catch (err) {
      return (err as Error).message;
    }
  };
  it.each([
    ['DROP DATABASE org_victim /* org_acme.x */', /not a CREATE statement but "DROP"/],
    ['CREATE TABLE org_acme.x (a UInt8) ENGINE = Memory; DROP DATABASE org_victim', /more than one statement/],
    ['CREATE TABLE org_acme.x (a UInt8) ENGINE = Memory;; SELECT 1', /more than one statement/],
    ['ATTACH TABLE org_acme.x (a UInt8) ENGINE = Memory', /not a CREATE statement/],
    ['CREATE TEMPORARY TABLE x (a UInt8) ENGINE = Memory', /CREATE TEMPORARY/],
    ['CREATE TABLE org_victim.x (a UInt8) ENGINE = Memory', /creates org_victim.x, outside/],
    ['CREATE VIEW org_acme.v AS SELECT * FROM org_victim.secrets', /names org_victim.secrets, outside/],
    ['CREATE VIEW org_acme.v AS SELECT * FROM system.query_log', /names system.query_log, outside/],
    [
      'CREATE TABLE org_acme.b (a UInt8) ENGINE = Buffer(org_victim, t, 1, 1, 1, 1, 1, 1, 1)',
      /Buffer engine reads database org_victim/,
    ],
    ["CREATE TABLE org_acme.m (a UInt8) ENGINE = Merge(org_victim, '^')", /Merge engine reads database org_victim/],
    [
      "CREATE TABLE org_acme.d (a UInt8) ENGINE = Distributed(c, 'org_victim', t)",
      /Distributed engine reads database 'org_victim'/,
    ],
    [
      "CREATE DICTIONARY org_acme.d (k UInt64, v String) PRIMARY KEY k SOURCE(CLICKHOUSE(DB 'org_victim' TABLE 't')) LAYOUT(FLAT()) LIFETIME(0)",
      /source reads database 'org_victim'/,
    ],
    ['INSERT INTO org_acme.x SELECT * FROM org_victim.y', /not a CREATE statement/],
  ])('refuses %s', (statement, why) => {
    expect(refusal(statement)).toMatch(why);
  });
  it.each([
    'CREATE TABLE org_acme.x (a UInt8) ENGINE = MergeTree ORDER BY a',
    'CREATE TABLE `org_acme`.`we;ird` (a UInt8) ENGINE = Memory',
    "CREATE TABLE org_acme.x (s String DEFAULT 'a; DROP DATABASE org_victim') ENGINE = Memory",
    'CREATE MATERIALIZED VIEW org_acme.mv TO org_acme.t AS SELECT a FROM org_acme.src',
    'CREATE VIEW org_acme.v AS SELECT number FROM system.numbers LIMIT 3',
    'CREATE TABLE org_acme.b (a UInt8) ENGINE = Buffer(org_acme, t, 1, 1, 1, 1, 1, 1, 1)',
    "CREATE TABLE org_acme.d (a UInt8) ENGINE = Distributed(c, 'org_acme', t)",
    'CREATE TABLE org_acme.x (a UInt8) ENGINE = Memory;',
  ])('accepts %s', (statement) => {
    expect(refusal(statement)).toBe('accepted');
  });
});
