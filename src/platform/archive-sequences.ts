import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FailureType, messageOf, permanentFailure } from '../errors';
import { ApplicationFailure } from '@temporalio/common';
import { readCustomArchiveToc, UnreadableArchiveHead } from './custom-archive-toc';

/**
 * The state of one sequence as a pg_dump archive holds it: what `pg_restore` sets it to.
 * A sequence is not transactional, so no snapshot can read the state pg_dump read; the archive's own
 * `SEQUENCE SET` entries are the only record of it.
 */
export interface DumpedSequence {
  schema: string;
  name: string;
  /** `last_value` as decimal text (bigint). */
  lastValue: string;
  isCalled: boolean;
}

/** A TOC line of `pg_restore --list` for a sequence's state: `3355; 0 0 SEQUENCE SET <schema> <name> <owner>`. */
const SEQUENCE_SET_ENTRY = /^\d+; \d+ \d+ SEQUENCE SET /;
/** pg_dump's statement for a sequence's state, with standard_conforming_strings on. */
const SETVAL_STATEMENT = /^SELECT pg_catalog\.setval\('((?:[^']|'')*)', (-?\d+), (true|false)\);$/gm;

/**
 * The two parts of a qualified name as pg_dump writes it (`"Org X"."se""q"`, `org_a.seq`).
 * @throws when the text is not exactly two identifiers.
 */
export function parseQualifiedName(text: string): { schema: string; name: string } {
  const parts: string[] = [];
  let rest = text;
  while (rest.length > 0) {
    const quoted = /^"((?:[^"]|"")*)"/.exec(rest);
    const bare = quoted ? undefined : /^[^".]+/.exec(rest);
    const token = quoted ?? bare;
    if (!token) throw new Error(`not a qualified name: ${JSON.stringify(text)}`);
    parts.push(quoted ? (quoted[1] ?? '').replace(/""/g, '"') : token[0]);
    rest = rest.slice(token[0].length);
    if (rest.startsWith('.')) rest = rest.slice(1);
    else if (rest.length > 0) throw new Error(`not a qualified name: ${JSON.stringify(text)}`);
  }
  const [schema, name] = parts;
  if (parts.length !== 2 || schema === undefined || name === undefined)
    throw new Error(`not a schema-qualified name: ${JSON.stringify(text)}`);
  return { schema, name };
}

/** Every `setval` statement of a script pg_restore printed from SEQUENCE SET entries. */
export function parseSetvalStatements(script: string): DumpedSequence[] {
  return [...script.matchAll(SETVAL_STATEMENT)].map((m) => ({
    ...parseQualifiedName((m[1] ?? '').replace(/''/g, "'")),
    lastValue: m[2] ?? '',
    isCalled: m[3] === 'true',
  }));
}

/**
 * The sequence states a custom-format pg_dump archive holds. They sit in its table of contents at the
 * head of the archive, so only that far is read, however large the archive is: by the worker itself
 * when the archive's layout is one custom-archive-toc.ts knows (no process is started), otherwise by
 * pg_restore (twice: `--list`, then `--use-list` with the SEQUENCE SET entries alone).
 * @param openArchive opens the archive from its start; called once per pass.
 * @throws when pg_restore fails; a non-retryable `ToolVersionMismatch` when it prints statements this
 *   parser does not read (every entry must parse).
 */
export async function readDumpedSequences(
  pgRestore: string,
  openArchive: () => Promise<Readable>,
  signal: AbortSignal,
): Promise<DumpedSequence[]> {
  return (
    (await sequencesFromArchiveHead(await openArchive())) ?? readSequencesWithPgRestore(pgRestore, openArchive, signal)
  );
}

/** {@link readDumpedSequences} by pg_restore alone: any archive it can read. */
export async function readSequencesWithPgRestore(
  pgRestore: string,
  openArchive: () => Promise<Readable>,
  signal: AbortSignal,
): Promise<DumpedSequence[]> {
  const entries = (await pgRestoreOutput(pgRestore, ['--list'], await openArchive(), signal))
    .split('\n')
    .filter((line) => SEQUENCE_SET_ENTRY.test(line));
  if (entries.length === 0) return [];
  const dir = await mkdtemp(path.join(tmpdir(), 'sequence-sets-'));
  try {
    const list = path.join(dir, 'list');
    await writeFile(list, `${entries.join('\n')}\n`);
    const script = await pgRestoreOutput(pgRestore, [`--use-list=${list}`, '--file=-'], await openArchive(), signal);
    const sequences = parseSetvalStatements(script);
    if (sequences.length !== entries.length) {
      throw permanentFailure(
        FailureType.ToolVersionMismatch,
        `the archive lists ${entries.length} SEQUENCE SET entries, but ${path.basename(pgRestore)} printed ${sequences.length} setval statements of the form this backup reads`,
        { store: 'postgres', object: 'pg_restore' },
      );
    }
    return sequences;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The SEQUENCE SET entries of the archive's table of contents, each statement parsed as pg_restore
 * would print it; undefined when the layout is not one the reader knows (then pg_restore reads it).
 */
async function sequencesFromArchiveHead(archive: Readable): Promise<DumpedSequence[] | undefined> {
  try {
    const entries = (await readCustomArchiveToc(archive)).filter((e) => e.desc === 'SEQUENCE SET');
    const sequences = entries.flatMap((e) => parseSetvalStatements(e.defn));
    if (sequences.length !== entries.length) {
      throw permanentFailure(
        FailureType.ToolVersionMismatch,
        `the archive lists ${entries.length} SEQUENCE SET entries, but ${sequences.length} hold a setval statement of the form this backup reads`,
        { store: 'postgres', object: 'pg_dump archive' },
      );
    }
    return sequences;
  } catch (err) {
    if (err instanceof UnreadableArchiveHead) return undefined;
    throw err;
  } finally {
    archive.destroy();
  }
}

/** Runs pg_restore on `archive` and returns what it printed; the rest of the archive is left unread. */
export async function pgRestoreOutput(
  command: string,
  args: string[],
  archive: Readable,
  signal: AbortSignal,
): Promise<string> {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], signal });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  // pg_restore stops reading after the table of contents, so the feed is cut short by design; its
  // error matters only when pg_restore failed (a store that could not be read, say).
  const feeding = pipeline(archive, child.stdin).then(
    () => undefined,
    (err: unknown) => err,
  );
  const code = await exited.finally(() => archive.destroy());
  const feedError = await feeding;
  if (code !== 0) {
    // A store that could not be read is the cause, classified by the store (one that is down is
    // retried, a checksum that does not match is not).
    if (feedError instanceof ApplicationFailure) throw feedError;
    const reading = feedError === undefined ? '' : ` (reading the archive: ${messageOf(feedError)})`;
    const message = `${path.basename(command)} ${args[0] ?? ''} failed: ${stderr.trim() || `exit code ${code}`}${reading}`;
    if (signal.aborted || code === null) throw new Error(message, { cause: feedError });
    // The whole archive was offered and pg_restore, which reads no server here, refused it: the
    // archive is not one it can read, and reading it again will not change that.
    throw permanentFailure(FailureType.VerificationFailed, message, { store: 'postgres', object: 'pg_restore' });
  }
  return stdout;
}
