import { execFileSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { Pool } from 'pg';
import { pgTool } from '../src/activities/postgres/tools';
import { loadConfig } from '../src/config';
import { readDumpedSequences, readSequencesWithPgRestore } from '../src/platform/archive-sequences';
import { readCustomArchiveToc, UnreadableArchiveHead } from '../src/platform/custom-archive-toc';
import { quotePgIdent } from '../src/platform/quoting';
import { uniqueOrgId } from './support/test-worker';

/**
 * The worker reads a backup's sequence states from the pg_dump archive's table of contents itself
 * (custom-archive-toc.ts) instead of running pg_restore twice (issue 17: four process spawns of a
 * small organization's backup). Checked against real pg_dump 15 archives and real pg_restore: the
 * same entries as `pg_restore --list`, the same states as the pg_restore path, and pg_restore still
 * reads every archive the reader does not know.
 */
describe('the table of contents of a pg_dump archive, read in the worker', () => {
  const config = loadConfig();
  const pool = new Pool({ connectionString: config.postgres.url, max: 2 });
  const pgDump = pgTool(config.postgres.binDir, 'pg_dump');
  const pgRestore = pgTool(config.postgres.binDir, 'pg_restore');
  // Names a sequence may have: quotes of both kinds, unicode, spaces, the longest identifier.
  const schema = `Toc ${uniqueOrgId('toc')} "x"`;
  const sequenceNames = ['plain_seq', `se'q "1"`, 'ünïcødé séq', 'MiXeD Case', 's'.repeat(63)];
  const signal = new AbortController().signal;

  beforeAll(async () => {
    const s = quotePgIdent(schema);
    await pool.query(`CREATE SCHEMA ${s}`);
    await pool.query(`CREATE TABLE ${s}.serials (id bigserial PRIMARY KEY, n int GENERATED ALWAYS AS IDENTITY)`);
    await pool.query(`INSERT INTO ${s}.serials SELECT FROM generate_series(1, 3)`);
    for (const [i, name] of sequenceNames.entries()) {
      await pool.query(`CREATE SEQUENCE ${s}.${quotePgIdent(name)} INCREMENT ${i % 2 === 0 ? 7 : -3} MINVALUE -1000`);
      // Every other one is called; the others keep is_called false at their start.
      if (i % 2 === 0) await pool.query(`SELECT nextval($1)`, [`${s}.${quotePgIdent(name)}`]);
    }
    await pool.query(
      `CREATE SEQUENCE ${s}.edge_seq MINVALUE -9223372036854775808 MAXVALUE 9223372036854775807 START -9223372036854775808`,
    );
    // Enough sequences that the table of contents spans many stream chunks.
    for (let i = 0; i < 300; i++) await pool.query(`CREATE SEQUENCE ${s}.${quotePgIdent(`bulk_${i}`)} START ${i + 1}`);
    await pool.query(`SELECT setval($1, 9223372036854775807)`, [`${s}.edge_seq`]);
  });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${quotePgIdent(schema)} CASCADE`);
    await pool.end();
  });

  const dump = (...args: string[]) =>
    execFileSync(pgDump, [...args, `--schema="${schema.replace(/"/g, '""')}"`, `--dbname=${config.postgres.url}`], {
      maxBuffer: 1 << 28,
    });
  const chunked = (archive: Buffer, size: number) =>
    Readable.from(
      Array.from({ length: Math.ceil(archive.length / size) }, (_, i) => archive.subarray(i * size, (i + 1) * size)),
    );

  /** The archive with its first TOC entry's first string (catalog tableoid) claiming 2 GB. */
  function withCorruptFirstEntryLength(archive: Buffer): Buffer {
    const copy = Buffer.from(archive);
    // pg_dump writes the ENCODING entry first: dump id, hadDumper, then the tableoid string "0".
    const at = copy.indexOf(Buffer.from([0, 1, 0, 0, 0, 0x30]));
    if (at < 0) throw new Error('no tableoid string "0" found in the archive head');
    copy.writeUInt32LE(0x7fffffff, at + 1);
    return copy;
  }

  it('lists the same entries as pg_restore --list, in 1-byte chunks as in one', async () => {
    const archive = dump('--format=custom', '--compress=0');
    const listed = execFileSync(pgRestore, ['--list'], { input: archive })
      .toString()
      .split('\n')
      .filter((line) => /^\d+;/.test(line))
      .map((line) => Number(line.split(';')[0]));
    const whole = await readCustomArchiveToc(Readable.from([archive]));
    // pg_restore --list leaves out the entries it applies as settings (and DATABASE, without --create).
    const settings = new Set(['ENCODING', 'STDSTRINGS', 'SEARCHPATH', 'DATABASE']);
    expect(whole.filter((e) => !settings.has(e.desc)).map((e) => e.dumpId)).toEqual(listed);
    expect(whole.filter((e) => settings.has(e.desc)).map((e) => e.desc)).toEqual([...settings]);
    expect(await readCustomArchiveToc(chunked(archive, 1))).toEqual(whole);
    const sets = whole.filter((e) => e.desc === 'SEQUENCE SET');
    expect(sets).toHaveLength(sequenceNames.length + 1 + 300 + 2);
    expect(new Set(sets.map((e) => e.namespace))).toEqual(new Set([schema]));
    expect(sets.map((e) => e.tag)).toEqual(expect.arrayContaining([...sequenceNames, 'edge_seq', 'serials_id_seq']));
  });

  it('reads the same sequence states as pg_restore, from an archive compressed by pg_dump too', async () => {
    for (const archive of [dump('--format=custom', '--compress=0'), dump('--format=custom', '--compress=6')]) {
      const open = async () => chunked(archive, 4096);
      const fromHead = await readDumpedSequences('/nonexistent/pg_restore-never-run', open, signal);
      const byPgRestore = await readSequencesWithPgRestore(pgRestore, open, signal);
      expect(fromHead).toEqual(byPgRestore);
      expect(fromHead).toContainEqual({
        schema,
        name: 'edge_seq',
        lastValue: '9223372036854775807',
        isCalled: true,
      });
      expect(fromHead).toContainEqual({ schema, name: `se'q "1"`, lastValue: '-1', isCalled: false });
      expect(fromHead).toContainEqual({ schema, name: 'serials_id_seq', lastValue: '3', isCalled: true });
    }
  });

  it('leaves an archive it does not know to pg_restore: another format, another version, a truncated head', async () => {
    const custom = dump('--format=custom', '--compress=0');
    const tar = dump('--format=tar');
    const laterVersion = Buffer.from(custom);
    laterVersion[6] = 15; // 1.15: pg_dump 16's layout, not read here
    for (const [what, archive] of [
      ['tar', tar],
      ['version 1.15', laterVersion],
      ['truncated', custom.subarray(0, 200)],
      ['corrupt length', withCorruptFirstEntryLength(custom)],
    ] as const) {
      const refusal = await readCustomArchiveToc(Readable.from([archive])).then(
        () => `${what}: read`,
        (err: unknown) =>
          err instanceof UnreadableArchiveHead ? `${what}: left to pg_restore` : `${what}: ${String(err)}`,
      );
      expect(refusal).toBe(`${what}: left to pg_restore`);
    }
    // A corrupt length is refused as soon as it is read, not after buffering the rest of the archive.
    await expect(readCustomArchiveToc(Readable.from([withCorruptFirstEntryLength(custom)]))).rejects.toThrow(
      /a string of 2147483647 bytes/,
    );
    // A tar archive is pg_restore's to read: the fallback answers with the same states.
    const fromTar = await readDumpedSequences(pgRestore, async () => Readable.from([tar]), signal);
    expect(fromTar).toEqual(await readDumpedSequences(pgRestore, async () => Readable.from([custom]), signal));
    // A truncated archive falls to pg_restore too, which refuses it by name.
    await expect(
      readDumpedSequences(pgRestore, async () => Readable.from([custom.subarray(0, 200)]), signal),
    ).rejects.toThrow(/pg_restore --list failed/);
  });
});
