/**
 * A lexer for ClickHouse SQL, just enough to rewrite a CREATE statement token by token: it knows
 * bare words, back-quoted and double-quoted identifiers, single-quoted strings (backslash escapes
 * and doubled quotes, as ClickHouse 18 and modern servers read them), numbers, `--` and nested
 * `/* *\/` comments. Tokens keep their exact text, so joining them gives the statement back.
 */
export type ClickHouseTokenKind = 'space' | 'comment' | 'word' | 'quoted' | 'string' | 'number' | 'symbol';

export interface ClickHouseToken {
  kind: ClickHouseTokenKind;
  /** The token as written. */
  text: string;
  /** Identifiers and strings unescaped; everything else as written. */
  value: string;
}

/** Thrown for SQL the lexer cannot split (an unterminated quote or comment). */
export class ClickHouseSqlSyntaxError extends Error {
  override readonly name = 'ClickHouseSqlSyntaxError';
}

const SIMPLE_ESCAPES: Record<string, number> = {
  b: 0x08,
  f: 0x0c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  '0': 0x00,
  a: 0x07,
  v: 0x0b,
  e: 0x1b,
};

/** Reads a quoted token starting at `start`; returns its end (exclusive) and its unescaped value. */
function readQuoted(sql: string, start: number): { end: number; value: string } {
  const quote = sql[start];
  const bytes: number[] = [];
  const pushText = (text: string) => bytes.push(...Buffer.from(text, 'utf8'));
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i];
    if (c === '\\') {
      const next = sql[i + 1];
      if (next === undefined) break;
      const hex = next === 'x' ? /^[0-9a-fA-F]{2}/.exec(sql.slice(i + 2, i + 4)) : null;
      if (hex) {
        bytes.push(parseInt(hex[0], 16));
        i += 4;
        continue;
      }
      const simple = SIMPLE_ESCAPES[next];
      if (simple !== undefined) bytes.push(simple);
      else pushText(next);
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        pushText(quote);
        i += 2;
        continue;
      }
      return { end: i + 1, value: Buffer.from(bytes).toString('utf8') };
    }
    const codePoint = sql.codePointAt(i) ?? 0;
    const char = String.fromCodePoint(codePoint);
    pushText(char);
    i += char.length;
  }
  throw new ClickHouseSqlSyntaxError(`unterminated ${quote} quote starting at offset ${start}`);
}

function isWordStart(c: string): boolean {
  return /[A-Za-z_$]/.test(c) || c.charCodeAt(0) >= 0x80;
}
function isWordPart(c: string | undefined): boolean {
  return c !== undefined && (/[A-Za-z0-9_$]/.test(c) || c.charCodeAt(0) >= 0x80);
}

/** Splits `sql` into tokens; `tokens.map((t) => t.text).join('') === sql`. */
export function tokenizeClickHouse(sql: string): ClickHouseToken[] {
  const tokens: ClickHouseToken[] = [];
  const push = (kind: ClickHouseTokenKind, start: number, end: number, value?: string) => {
    const text = sql.slice(start, end);
    tokens.push({ kind, text, value: value ?? text });
  };
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] ?? '';
    const start = i;
    if (/\s/.test(c)) {
      while (i < sql.length && /\s/.test(sql[i] ?? '')) i++;
      push('space', start, i);
    } else if (c === '-' && sql[i + 1] === '-') {
      const newline = sql.indexOf('\n', i);
      i = newline === -1 ? sql.length : newline;
      push('comment', start, i);
    } else if (c === '/' && sql[i + 1] === '*') {
      let depth = 0;
      do {
        if (sql.startsWith('/*', i)) {
          depth++;
          i += 2;
        } else if (sql.startsWith('*/', i)) {
          depth--;
          i += 2;
        } else if (i >= sql.length) {
          throw new ClickHouseSqlSyntaxError(`unterminated comment starting at offset ${start}`);
        } else i++;
      } while (depth > 0);
      push('comment', start, i);
    } else if (c === '`' || c === '"' || c === "'") {
      const { end, value } = readQuoted(sql, i);
      i = end;
      push(c === "'" ? 'string' : 'quoted', start, i, value);
    } else if (/[0-9]/.test(c)) {
      const number = /^(0[xX][0-9a-fA-F_]+|[0-9][0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9]+)?)/.exec(sql.slice(i));
      i += number?.[0].length ?? 1;
      while (isWordPart(sql[i])) i++;
      push('number', start, i);
    } else if (isWordStart(c)) {
      while (isWordPart(sql[i])) i++;
      push('word', start, i);
    } else {
      i += 1;
      push('symbol', start, i);
    }
  }
  return tokens;
}

/** True for a token naming something: a bare word or a quoted identifier. */
export function isIdentifierToken(token: ClickHouseToken | undefined): token is ClickHouseToken {
  return token !== undefined && (token.kind === 'word' || token.kind === 'quoted');
}

/** True for a bare word equal to `keyword`, ignoring case (ClickHouse keywords are case-insensitive). */
export function isKeyword(token: ClickHouseToken | undefined, keyword: string): boolean {
  return token !== undefined && token.kind === 'word' && token.value.toUpperCase() === keyword;
}

/** True for the symbol `symbol`. */
export function isSymbol(token: ClickHouseToken | undefined, symbol: string): boolean {
  return token !== undefined && token.kind === 'symbol' && token.value === symbol;
}

/** Tokens without spaces and comments, each with its index in the full list. */
export function significantTokens(tokens: readonly ClickHouseToken[]): Array<ClickHouseToken & { index: number }> {
  return tokens.flatMap((t, index) => (t.kind === 'space' || t.kind === 'comment' ? [] : [{ ...t, index }]));
}
