/**
 * File names for database objects in the backup store. An object may be named anything its server
 * allows — `/`, `.`, `..`, spaces, quotes, unicode, names differing only in case — while a file name
 * must stay one path segment on every filesystem and object store, case-insensitive ones included.
 *
 * Lower-case ASCII letters, digits, `_` and `-` stand for themselves; every other byte of the name's
 * UTF-8 is `%XX` with upper-case hex (upper-case letters too, so `Events` and `events` never share a
 * file on a case-insensitive filesystem). Plain names (`kg_nodes`) keep the file names they always had.
 */
export function encodeObjectFileName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[a-z0-9_-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * The name {@link encodeObjectFileName} encoded.
 * @throws Error for a string that encoding cannot have produced.
 */
export function decodeObjectFileName(encoded: string): string {
  if (!/^(?:[a-z0-9_-]|%[0-9A-F]{2})*$/.test(encoded)) throw new Error(`not an encoded object file name: ${JSON.stringify(encoded.slice(0, 120))}`);
  const bytes: number[] = [];
  for (let i = 0; i < encoded.length; ) {
    if (encoded[i] === '%') {
      bytes.push(parseInt(encoded.slice(i + 1, i + 3), 16));
      i += 3;
    } else {
      bytes.push(encoded.charCodeAt(i));
      i += 1;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
