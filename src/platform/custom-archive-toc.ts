import type { Readable } from 'node:stream';

/*
 * The table of contents of a custom-format pg_dump archive, read in the worker instead of by a
 * `pg_restore --list` process: a small organization's backup spawned four processes (two
 * pg_restore, two zstd) only to read its sequence states, and each spawn stalls a worker whose
 * resident set is hundreds of MB for many milliseconds (fork copies its page tables;
 * bench/platform.ts). The archive's head is written by pg_dump's WriteHead and WriteToc
 * (src/bin/pg_dump/pg_backup_archiver.c): a magic, a version, sizes, the creation time, names,
 * then one record per entry. Only layouts checked against a real pg_dump are read (`READ_VERSIONS`);
 * any other archive is left to pg_restore, which always remains the reader of record for restores.
 */

/** One entry of the table of contents, as pg_dump wrote it. */
export interface ArchiveTocEntry {
  dumpId: number;
  /** `TABLE`, `SEQUENCE SET`, `INDEX`, … */
  desc: string;
  /** The object's name (a sequence's, for `SEQUENCE SET`). */
  tag: string;
  /** The schema, or null for objects outside one. */
  namespace: string | null;
  /** The SQL pg_restore runs for the entry: for `SEQUENCE SET`, one `SELECT pg_catalog.setval(…);`. */
  defn: string;
}

/** Archive format versions (major.minor) whose layout this reader knows (pg_dump 15 writes 1.14). */
const READ_VERSIONS = new Set(['1.14']);
/** `archCustom` in pg_backup.h. */
const CUSTOM_FORMAT = 1;
/**
 * The longest string of the table of contents read here: a corrupt length would otherwise make the
 * reader hold up to the whole archive in memory looking for it; a longer one is left to pg_restore.
 */
const MAX_TOC_STRING_BYTES = 256 * 1024 * 1024;

/** The archive is not one this reader knows: the caller falls back to pg_restore. */
export class UnreadableArchiveHead extends Error {}

/** A byte reader over the chunks of a stream, pulling more only when a value needs them. */
class HeadReader {
  private buffer = Buffer.alloc(0);
  private offset = 0;
  private readonly chunks: AsyncIterator<Buffer>;
  constructor(stream: Readable) {
    this.chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  async bytes(n: number): Promise<Buffer> {
    if (this.buffer.length - this.offset < n) {
      // Gathered first and joined once, so a long statement costs one copy, not one per chunk.
      const parts: Buffer[] = [this.buffer.subarray(this.offset)];
      let have = parts[0]?.length ?? 0;
      while (have < n) {
        const next = await this.chunks.next();
        if (next.done) throw new UnreadableArchiveHead('the archive ends inside its table of contents');
        parts.push(next.value);
        have += next.value.length;
      }
      this.buffer = Buffer.concat(parts);
      this.offset = 0;
    }
    const out = this.buffer.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  async byte(): Promise<number> {
    return (await this.bytes(1))[0] ?? 0;
  }
}

/**
 * Reads the table of contents at the head of a custom-format archive; the rest of the stream is
 * left unread (the caller destroys it).
 * @throws {UnreadableArchiveHead} when the stream is not a custom archive of a known layout.
 */
export async function readCustomArchiveToc(stream: Readable): Promise<ArchiveTocEntry[]> {
  const reader = new HeadReader(stream);
  if ((await reader.bytes(5)).toString('latin1') !== 'PGDMP')
    throw new UnreadableArchiveHead('not a pg_dump archive (no PGDMP magic)');
  const [major, minor] = [await reader.byte(), await reader.byte(), await reader.byte()];
  const version = `${major}.${minor}`;
  if (!READ_VERSIONS.has(version)) throw new UnreadableArchiveHead(`archive version ${version} is not read here`);
  const intSize = await reader.byte();
  const offSize = await reader.byte();
  const format = await reader.byte();
  // ReadInt assembles intSize bytes into a C int; above 6 bytes a JS number would lose precision.
  if (intSize < 1 || intSize > 6 || offSize < 1 || offSize > 16)
    throw new UnreadableArchiveHead(`unexpected integer sizes ${intSize}/${offSize}`);
  if (format !== CUSTOM_FORMAT) throw new UnreadableArchiveHead(`archive format ${format} is not custom`);

  // WriteInt: a sign byte, then the magnitude in intSize bytes, least significant first.
  const readInt = async (): Promise<number> => {
    const negative = (await reader.byte()) !== 0;
    const bytes = await reader.bytes(intSize);
    let value = 0;
    for (let i = intSize - 1; i >= 0; i--) value = value * 256 + (bytes[i] ?? 0);
    return negative ? -value : value;
  };
  // WriteStr: a length (-1 for NULL), then that many bytes, UTF-8 in every encoding we accept.
  const readStr = async (): Promise<string | null> => {
    const length = await readInt();
    if (length < 0) return null;
    if (length > MAX_TOC_STRING_BYTES)
      throw new UnreadableArchiveHead(`a string of ${length} bytes in the table of contents`);
    return (await reader.bytes(length)).toString('utf8');
  };

  await readInt(); // compression level (a byte of algorithm from 1.15 on)
  for (let i = 0; i < 7; i++) await readInt(); // creation time: sec, min, hour, mday, mon, year, isdst
  await readStr(); // database name
  await readStr(); // server version
  await readStr(); // pg_dump version

  const count = await readInt();
  if (count < 0) throw new UnreadableArchiveHead(`negative entry count ${count}`);
  const entries: ArchiveTocEntry[] = [];
  for (let i = 0; i < count; i++) {
    const dumpId = await readInt();
    await readInt(); // hadDumper
    await readStr(); // catalog tableoid
    await readStr(); // catalog oid
    const tag = (await readStr()) ?? '';
    const desc = (await readStr()) ?? '';
    await readInt(); // section
    const defn = (await readStr()) ?? '';
    await readStr(); // dropStmt
    await readStr(); // copyStmt
    const namespace = await readStr();
    await readStr(); // tablespace
    await readStr(); // table access method (1.14)
    await readStr(); // owner
    await readStr(); // "false": WITH OIDS, long gone
    while ((await readStr()) !== null); // dependencies, each a dump id as text, NULL-terminated
    // The custom format's extra TOC data: the data offset, a flag byte then offSize bytes.
    await reader.bytes(1 + offSize);
    if (!Number.isInteger(dumpId) || dumpId <= 0) throw new UnreadableArchiveHead(`entry ${i} has dump id ${dumpId}`);
    entries.push({ dumpId, desc, tag, namespace, defn });
  }
  return entries;
}
