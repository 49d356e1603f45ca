/**
 * File names for database objects in the backup store. An object may be named anything its server
 * allows — `/`, `.`, `..`, spaces, quotes, unicode, names differing only in case — while a file name
 * must be one path segment the store accepts (letters, digits, `_`, `.`, `-`, not starting with `.`
 * or `-`; storage/backup-store.ts) on every filesystem and object store, case-insensitive ones too.
 *
 * Lower-case ASCII letters, digits and `_` stand for themselves (a leading `_` excepted); every other
 * byte of the name's UTF-8 is `-XX`, upper-case hex (upper-case letters too, so `Events` and `events`
 * never share a file on a case-insensitive filesystem). An encoding that would start with `-` gets a
 * leading `_`, which a name's own leading `_` (always escaped) can never be mistaken for. `.` is
 * never produced, so the extension after it is unambiguous. Plain names (`kg_nodes`) keep their old file names.
 */
export function encodeObjectFileName(name: string): string {
  let out = '';
  for (const [i, byte] of [...Buffer.from(name, 'utf8')].entries()) {
    const c = String.fromCharCode(byte);
    out += (i === 0 ? /[a-z0-9]/ : /[a-z0-9_]/).test(c) ? c : `-${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out.startsWith('-') ? `_${out}` : out;
}

/**
 * The name {@link encodeObjectFileName} encoded.
 * @throws Error for a string that encoding cannot have produced.
 */
export function decodeObjectFileName(encoded: string): string {
  const prefixed = encoded.startsWith('_-');
  const body = prefixed ? encoded.slice(1) : encoded;
  if (!(prefixed ? /^-[0-9A-F]{2}/ : /^[a-z0-9]/).test(body) || !/^(?:[a-z0-9_]|-[0-9A-F]{2})*$/.test(body))
    throw new Error(`not an encoded object file name: ${JSON.stringify(encoded.slice(0, 120))}`);
  const bytes: number[] = [];
  for (let i = 0; i < body.length;) {
    if (body[i] === '-') {
      bytes.push(parseInt(body.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(body.charCodeAt(i));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
