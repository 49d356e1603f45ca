import { FailureType, permanentFailure } from '../errors';
import {
  ClickHouseSqlSyntaxError,
  isIdentifierToken,
  isKeyword,
  isSymbol,
  significantTokens,
  tokenizeClickHouse,
  type ClickHouseToken,
} from './clickhouse-tokens';
import { consumesFromOutside } from './clickhouse-catalog';
import { quoteClickHouseIdent, quoteClickHouseString } from './quoting';

/** A CREATE statement this project will not move to another database; the message says why. */
export class ClickHouseDdlRefused extends Error {
  override readonly name = 'ClickHouseDdlRefused';
}

/** What a CREATE statement makes. */
export type ClickHouseStatementKind = 'table' | 'view' | 'materialized-view' | 'dictionary';

export interface ClickHouseStatement {
  kind: ClickHouseStatementKind;
  database: string;
  name: string;
  /** The table engine (`MergeTree`, `Buffer`, …); a materialized view's is its inner table's; absent for views and `TO` views. */
  engine?: string;
  /** The engine's arguments, one token list per top-level argument. */
  engineArguments: ClickHouseToken[][];
  /** A materialized view's `TO` table. */
  to?: { database: string; name: string };
  /** Every `database.name` the statement mentions apart from its own name, in order. */
  references: Array<{ database: string; name: string }>;
}

type Significant = ReturnType<typeof significantTokens>;

const OBJECT_KEYWORDS: Array<[string[], ClickHouseStatementKind]> = [
  [['TABLE'], 'table'],
  [['VIEW'], 'view'],
  [['MATERIALIZED', 'VIEW'], 'materialized-view'],
  [['LIVE', 'VIEW'], 'view'],
  [['DICTIONARY'], 'dictionary'],
];

/** Index in `sig` just after `CREATE [OR REPLACE] [TEMPORARY] <kind> [IF NOT EXISTS]`, and the kind. */
function readHeader(sig: Significant): { at: number; kind: ClickHouseStatementKind } {
  let at = 0;
  if (!isKeyword(sig[at], 'CREATE') && !isKeyword(sig[at], 'ATTACH'))
    throw new ClickHouseDdlRefused('not a CREATE statement');
  at++;
  if (isKeyword(sig[at], 'OR') && isKeyword(sig[at + 1], 'REPLACE')) at += 2;
  if (isKeyword(sig[at], 'TEMPORARY')) at++;
  const match = OBJECT_KEYWORDS.find(([words]) => words.every((w, k) => isKeyword(sig[at + k], w)));
  if (!match) throw new ClickHouseDdlRefused(`CREATE of an unknown kind of object: ${sig[at]?.text ?? 'nothing'}`);
  at += match[0].length;
  if (isKeyword(sig[at], 'IF') && isKeyword(sig[at + 1], 'NOT') && isKeyword(sig[at + 2], 'EXISTS')) at += 3;
  return { at, kind: match[1] };
}

/** Reads `database.name` at `at`. */
function readQualified(sig: Significant, at: number): { database: string; name: string } | undefined {
  const [db, dot, name] = [sig[at], sig[at + 1], sig[at + 2]];
  if (isIdentifierToken(db) && isSymbol(dot, '.') && isIdentifierToken(name))
    return { database: db.value, name: name.value };
  return undefined;
}

/** Index of the first top-level (parenthesis depth 0) token from `from` that satisfies `test`, or -1. */
function findTopLevel(sig: Significant, from: number, test: (t: ClickHouseToken) => boolean): number {
  let depth = 0;
  for (let i = from; i < sig.length; i++) {
    const t = sig[i];
    if (t === undefined) break;
    if (depth === 0 && test(t)) return i;
    if (isSymbol(t, '(') || isSymbol(t, '[')) depth++;
    else if (isSymbol(t, ')') || isSymbol(t, ']')) depth--;
  }
  return -1;
}

/** Splits the arguments of a call whose `(` is at `open` into top-level arguments. */
function readArguments(sig: Significant, open: number): ClickHouseToken[][] {
  const args: ClickHouseToken[][] = [];
  let current: ClickHouseToken[] = [];
  let depth = 0;
  for (let i = open + 1; i < sig.length; i++) {
    const t = sig[i];
    if (t === undefined) break;
    if (depth === 0 && isSymbol(t, ')')) break;
    if (depth === 0 && isSymbol(t, ',')) {
      args.push(current);
      current = [];
      continue;
    }
    if (isSymbol(t, '(') || isSymbol(t, '[')) depth++;
    else if (isSymbol(t, ')') || isSymbol(t, ']')) depth--;
    current.push(t);
  }
  if (current.length > 0 || args.length > 0) args.push(current);
  return args;
}

/**
 * Reads what a `SHOW CREATE TABLE` statement makes: its kind, qualified name, engine, `TO` table and
 * the qualified names it mentions.
 * @throws ClickHouseDdlRefused for a statement that is not a CREATE of a table, view or dictionary
 *   with a qualified name; ClickHouseSqlSyntaxError for one the lexer cannot split.
 */
export function describeClickHouseStatement(statement: string): ClickHouseStatement {
  const sig = significantTokens(tokenizeClickHouse(statement));
  const { at, kind } = readHeader(sig);
  const own = readQualified(sig, at);
  if (!own) throw new ClickHouseDdlRefused('the CREATE statement does not name its object as database.name');
  const asAt = findTopLevel(sig, at, (t) => isKeyword(t, 'AS'));
  const bodyEnd = asAt === -1 ? sig.length : asAt;
  const engineAt = findTopLevel(sig, at + 3, (t) => isKeyword(t, 'ENGINE'));
  let engine: string | undefined;
  let engineArguments: ClickHouseToken[][] = [];
  if (engineAt !== -1 && engineAt < bodyEnd) {
    const nameAt = isSymbol(sig[engineAt + 1], '=') ? engineAt + 2 : engineAt + 1;
    engine = sig[nameAt]?.value;
    if (isSymbol(sig[nameAt + 1], '(')) engineArguments = readArguments(sig, nameAt + 1);
  }
  let to: ClickHouseStatement['to'];
  if (kind === 'materialized-view') {
    const toAt = findTopLevel(sig, at + 3, (t) => isKeyword(t, 'TO'));
    if (toAt !== -1 && toAt < bodyEnd && !isKeyword(sig[toAt + 1], 'INNER')) to = readQualified(sig, toAt + 1);
  }
  const references: ClickHouseStatement['references'] = [];
  for (let i = at + 3; i < sig.length; i++) {
    if (isSymbol(sig[i - 1], '.')) continue;
    const ref = readQualified(sig, i);
    if (ref) references.push(ref);
  }
  return { kind, database: own.database, name: own.name, engine, engineArguments, to, references };
}

/**
 * Rewrites a CREATE statement of database `from` to create the same object in database `to`, token
 * by token, so names inside strings, comments and other identifiers are never touched by accident:
 * - `from.name` (any quoting) becomes `to.name`;
 * - `from` as a whole argument of a call (`Buffer(from, t, …)`, `Merge(from, '^t')`, `remote(…, from, t)`) becomes `to`;
 * - the string `'from'` (`Distributed(c, 'from', t)`, a dictionary's `DB 'from'`) and `'from.name'`
 *   (`dictGet('from.d', …)`) become `'to'` and `'to.name'`;
 * - a table or view UUID (`UUID '…'`, `TO INNER UUID '…'`) is dropped, so a copy never reuses the
 *   source's UUIDs on an Atomic database.
 * `COMMENT '…'` strings are left as they are.
 * @throws ClickHouseDdlRefused when the statement creates an object outside `from`, or names `from`
 *   anywhere else (another identifier position, inside a longer string such as a ZooKeeper path):
 *   such a statement would keep pointing at the source.
 */
export function retargetCreateStatement(statement: string, from: string, to: string): string {
  const tokens = tokenizeClickHouse(statement);
  const sig = significantTokens(tokens);
  const { at } = readHeader(sig);
  const own = readQualified(sig, at);
  if (!own) throw new ClickHouseDdlRefused('the CREATE statement does not name its object as database.name');
  if (own.database !== from)
    throw new ClickHouseDdlRefused(`the CREATE statement does not create an object of database ${from}`);
  const replaced = new Map<number, string>();
  // The header runs to the column list, the engine or the query; UUIDs live there.
  const headerEnd = findTopLevel(sig, at + 3, (t) => isSymbol(t, '(') || isKeyword(t, 'AS') || isKeyword(t, 'ENGINE'));
  for (let i = at + 3; i < (headerEnd === -1 ? sig.length : headerEnd); i++) {
    if (!isKeyword(sig[i], 'UUID') || sig[i + 1]?.kind !== 'string') continue;
    let first = i;
    if (isKeyword(sig[i - 1], 'INNER') && isKeyword(sig[i - 2], 'TO')) first = i - 2;
    for (let k = first; k <= i + 1; k++) {
      const t = sig[k];
      if (t) replaced.set(t.index, '');
    }
  }
  // Into the same database every mention of it is already right; only the UUIDs go.
  for (let i = 0; i < (from === to ? 0 : sig.length); i++) {
    const t = sig[i];
    if (t === undefined || replaced.has(t.index)) continue;
    const prev = sig[i - 1];
    const next = sig[i + 1];
    if (isIdentifierToken(t) && t.value === from) {
      if (isSymbol(prev, '.')) continue;
      const wholeArgument =
        (isSymbol(prev, '(') || isSymbol(prev, ',')) && (isSymbol(next, ',') || isSymbol(next, ')'));
      if (isSymbol(next, '.') || wholeArgument) replaced.set(t.index, quoteClickHouseIdent(to));
      else
        throw new ClickHouseDdlRefused(
          `the statement names database ${from} as ${JSON.stringify(context(sig, i))}, which is neither a qualified name nor an engine argument`,
        );
    } else if (t.kind === 'string' && t.value.includes(from) && !isKeyword(prev, 'COMMENT')) {
      if (t.value === from) replaced.set(t.index, quoteClickHouseString(to));
      else if (t.value.startsWith(`${from}.`))
        replaced.set(t.index, quoteClickHouseString(`${to}${t.value.slice(from.length)}`));
      else
        throw new ClickHouseDdlRefused(
          `the statement names database ${from} inside the string ${t.text.slice(0, 120)}, which cannot be retargeted safely`,
        );
    }
  }
  // A dropped token takes the space before it along.
  for (const [index, replacement] of [...replaced])
    if (replacement === '' && tokens[index - 1]?.kind === 'space') replaced.set(index - 1, '');
  return tokens.map((t, index) => replaced.get(index) ?? t.text).join('');
}

/**
 * The CREATE statement of a streaming table (clickhouse-catalog.ts' `consumesFromOutside`) with its
 * engine clause replaced by `ENGINE = Null`: the columns stay, so views reading it still create, and
 * nothing consumes. Everything from the top-level `ENGINE` to the end belongs to the engine: its
 * arguments and `SETTINGS`, where a Kafka table keeps its brokers and consumer group; a table
 * `COMMENT` after them goes too (a detached copy is not the organization's own table).
 * @throws ClickHouseDdlRefused for a statement that is not a CREATE TABLE with an ENGINE clause.
 */
export function detachStreamingTable(statement: string): string {
  const tokens = tokenizeClickHouse(statement);
  const sig = significantTokens(tokens);
  const { at, kind } = readHeader(sig);
  if (kind !== 'table') throw new ClickHouseDdlRefused(`a ${kind} has no stream to detach`);
  const engineAt = findTopLevel(sig, at + 3, (t) => isKeyword(t, 'ENGINE'));
  const engine = sig[engineAt];
  if (engineAt === -1 || engine === undefined)
    throw new ClickHouseDdlRefused('the statement has no ENGINE clause to detach');
  return `${tokens
    .slice(0, engine.index)
    .map((t) => t.text)
    .join('')}ENGINE = Null`;
}

/**
 * What modern servers print in place of a credential in `SHOW CREATE` (a MySQL, PostgreSQL, S3 or
 * Kafka table's password, a dictionary source's) unless the user may see secrets (the server's
 * `display_secrets_in_show_and_select`, the `displaySecretsInShowAndSelect` grant and the query
 * setting `format_display_secrets_in_show_and_select`, ClickHouse 23.3 and later).
 */
const HIDDEN_SECRET = '[HIDDEN]';

/**
 * Refuses a statement that holds a masked secret: restored, it would create a table whose password
 * is the literal `[HIDDEN]`, so the backup could never bring it back. The refusal says what to grant.
 * @throws ClickHouseDdlRefused.
 */
export function checkNoHiddenSecrets(statement: string): void {
  const sig = significantTokens(tokenizeClickHouse(statement));
  // A comment saying '[HIDDEN]' is the user's text, not a masked value.
  const masked = sig.find(
    (t, i) => t.kind === 'string' && t.value === HIDDEN_SECRET && !isKeyword(sig[i - 1], 'COMMENT'),
  );
  if (masked)
    throw new ClickHouseDdlRefused(
      `the server masked a secret in its CREATE statement as '${HIDDEN_SECRET}': let the backup user see secrets ` +
        `(server setting display_secrets_in_show_and_select = 1 and GRANT displaySecretsInShowAndSelect), ` +
        `or the backup could not restore it`,
    );
}

/** A few tokens around `i`, for a refusal that shows where the name was found. */
function context(sig: Significant, i: number): string {
  return sig
    .slice(Math.max(0, i - 2), i + 3)
    .map((t) => t.text)
    .join(' ');
}

/** A database name no organization has, to prove a statement can be moved. */
const PROBE_DATABASE = 'eloquent_scratch_probe';

/**
 * Proves at backup time that a statement can be restored into another database (a clone, a
 * verification scratch copy), so a backup never holds DDL that only its own database can take:
 * it must retarget (see {@link retargetCreateStatement}), and a `Replicated*` table's ZooKeeper path
 * must depend on the database (`{database}` or `{uuid}`), or a copy would join the source's replicas;
 * and it must hold no secret the server masked (see {@link checkNoHiddenSecrets}).
 * @throws ClickHouseDdlRefused naming the reason.
 */
export function checkClickHouseStatementMovable(statement: string, database: string): void {
  checkNoHiddenSecrets(statement);
  // What a restore would refuse is refused now, while the source can still be looked at.
  assertRestorableStatement(statement, database);
  const { engine, engineArguments } = describeClickHouseStatement(statement);
  // A streaming table moves detached (restore.ts), so its engine clause (a consumer group named
  // after the database, say) never needs retargeting.
  retargetCreateStatement(
    consumesFromOutside(engine) ? detachStreamingTable(statement) : statement,
    database,
    PROBE_DATABASE,
  );
  if (engine?.startsWith('Replicated')) {
    const path = engineArguments[0]?.[0];
    if (path?.kind !== 'string' || !/\{(database|uuid)\}/.test(path.value)) {
      throw new ClickHouseDdlRefused(
        `its ZooKeeper path ${path?.text ?? '(none)'} does not contain {database} or {uuid}, so a copy would replicate with the source`,
      );
    }
  }
}

/**
 * A refused or unreadable statement as a non-retryable failure naming the organization and object;
 * any other error is returned as it is.
 */
export function ddlFailure(err: unknown, orgId: string, object: string, action: 'back up' | 'restore'): unknown {
  if (!(err instanceof ClickHouseDdlRefused) && !(err instanceof ClickHouseSqlSyntaxError)) return err;
  return permanentFailure(FailureType.StoreRejected, `cannot ${action} ${object}: ${err.message}`, {
    store: 'clickhouse',
    orgId,
    object,
  });
}

/** Tables of `system` a view may read: generators without data of anyone. */
const READABLE_SYSTEM_TABLES = new Set(['one', 'numbers', 'numbers_mt', 'zeros', 'zeros_mt']);

/** Engines whose arguments name a database, and which argument (0-based) does. */
const DATABASE_ARGUMENT_OF_ENGINE: Record<string, number> = { Buffer: 0, Merge: 0, Distributed: 1 };

/**
 * Refuses a statement read back from a backup unless it is exactly one CREATE of a table, view,
 * materialized view or dictionary in `database`, mentioning no other database: no second statement
 * after a `;`, no DROP / ALTER / ATTACH / INSERT, no `OR REPLACE`, no TEMPORARY table, no qualified
 * name, `Buffer`/`Merge`/`Distributed` database or dictionary `DB` of another database (`system`'s
 * generators `one`, `numbers`, `zeros` excepted). A backup's DDL is data an attacker with write access
 * to the store could have written: it is parsed, never trusted because the source name appears in it.
 * @throws ClickHouseDdlRefused naming the reason; ClickHouseSqlSyntaxError for SQL the lexer cannot split.
 */
export function assertRestorableStatement(statement: string, database: string): ClickHouseStatement {
  const sig = significantTokens(tokenizeClickHouse(statement));
  const semicolon = sig.findIndex((t) => isSymbol(t, ';'));
  if (semicolon !== -1 && semicolon !== sig.length - 1)
    throw new ClickHouseDdlRefused('it holds more than one statement');
  if (!isKeyword(sig[0], 'CREATE'))
    throw new ClickHouseDdlRefused(`it is not a CREATE statement but ${JSON.stringify(sig[0]?.text ?? '')}`);
  if (isKeyword(sig[1], 'OR') || isKeyword(sig[1], 'TEMPORARY'))
    throw new ClickHouseDdlRefused(`CREATE ${sig[1]?.text ?? ''} is not what a backup holds`);
  const described = describeClickHouseStatement(statement);
  if (described.database !== database)
    throw new ClickHouseDdlRefused(
      `it creates ${described.database}.${described.name}, outside the organization's database ${database}`,
    );
  for (const ref of described.references) {
    if (ref.database === database) continue;
    if (ref.database === 'system' && READABLE_SYSTEM_TABLES.has(ref.name)) continue;
    throw new ClickHouseDdlRefused(
      `it names ${ref.database}.${ref.name}, outside the organization's database ${database}`,
    );
  }
  const argument = described.engine === undefined ? undefined : DATABASE_ARGUMENT_OF_ENGINE[described.engine];
  if (argument !== undefined) {
    const tokens = described.engineArguments[argument] ?? [];
    const named = tokens.length === 1 ? tokens[0] : undefined;
    const namesDatabase = named !== undefined && ['word', 'quoted', 'string'].includes(named.kind);
    if (!namesDatabase || named.value !== database)
      throw new ClickHouseDdlRefused(
        `its ${described.engine} engine reads database ${tokens.map((t) => t.text).join(' ') || '(none)'}, not ${database}`,
      );
  }
  if (described.kind === 'dictionary') {
    for (let i = 0; i < sig.length - 1; i++)
      if (isKeyword(sig[i], 'DB') && sig[i + 1]?.value !== database)
        throw new ClickHouseDdlRefused(`its source reads database ${sig[i + 1]?.text ?? ''}, not ${database}`);
  }
  return described;
}
