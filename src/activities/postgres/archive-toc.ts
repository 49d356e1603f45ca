import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType, permanentFailure } from '../../errors';
import { pgRestoreOutput } from '../../platform/archive-sequences';

/*
 * A backup's pg_dump archive is restored from a list of its own table of contents, filtered to the
 * organization's schemas, never as a whole: an archive that holds anything else (tampered with, or
 * dumped with another schema) is refused, naming each foreign entry, before anything runs.
 */

/** `pg_restore --list` line: `<dump id>; <table oid> <oid> <desc> <namespace> <tag> <owner>`. */
const ENTRY = /^(\d+); \d+ \d+ /;

/** Entries of a schema itself, whose namespace is `-`: created by the restore, owner/ACL/comment from the catalog. */
const SCHEMA_LEVEL = /^\d+; \d+ \d+ (?:SCHEMA - (\S+) |ACL - SCHEMA (\S+) |COMMENT - SCHEMA (\S+) )/;

/** What a restore list leaves out of the organization's own entries and applies itself (privileges.ts). */
const APPLIED_APART = /^\d+; \d+ \d+ (?:ACL|DEFAULT ACL|POLICY) /;

export interface ArchiveRestoreList {
  /** The organization's schemas the archive creates (its SCHEMA entries that the data map calls the organization's). */
  schemas: string[];
  /** The `--use-list` file. */
  listFile: string;
  /** The `--schema` arguments that restrict pg_restore to the same schemas by exact name. */
  schemaArgs: string[];
  /** Entries kept for pg_restore. */
  entries: number;
}

/**
 * Builds the restore list of an archive for the organization's schemas (its SCHEMA entries that
 * `isOrgSchema` accepts) and runs `work` with it.
 * Two listings of the archive's head: all entries, and those pg_restore itself places in `schemas`
 * (`--schema`, exact names, so a schema whose name merely starts like one of them is not taken).
 * Every entry must be in one of them, or be a schema-level entry (SCHEMA, its ACL, its COMMENT) of
 * one of them. ACL, DEFAULT ACL and POLICY entries are left to the catalog when `privilegesApart`.
 * @throws a non-retryable `RestoreRefused` listing every entry outside the organization's schemas.
 */
export async function withArchiveRestoreList<T>(
  pgRestore: string,
  openArchive: () => Promise<Readable>,
  signal: AbortSignal,
  target: { isOrgSchema: (name: string) => boolean; privilegesApart: boolean; orgId: string; archive: string },
  work: (list: ArchiveRestoreList) => Promise<T>,
): Promise<T> {
  const lines = (text: string) => text.split('\n').filter((line) => ENTRY.test(line));
  const all = lines(
    await pgRestoreOutput(pgRestore, ['--list'], await openArchive(), signal).catch((err: unknown) => {
      if (!(err instanceof ApplicationFailure) || err.type !== FailureType.VerificationFailed) throw err;
      throw permanentFailure(
        FailureType.RestoreRefused,
        `archive ${target.archive} cannot be read by pg_restore, so it is not restored; nothing was changed: ${err.message}`,
        { store: 'postgres', orgId: target.orgId, object: target.archive },
      );
    }),
  );
  const schemas = [
    ...new Set(all.flatMap((line) => /^\d+; \d+ \d+ SCHEMA - (\S+) /.exec(line)?.[1] ?? []).filter(target.isOrgSchema)),
  ].sort();
  if (schemas.length === 0) {
    throw permanentFailure(
      FailureType.RestoreRefused,
      `archive ${target.archive} creates none of the organization's schemas; nothing was changed`,
      { store: 'postgres', orgId: target.orgId, object: target.archive },
    );
  }
  const schemaArgs = schemas.map((s) => `--schema=${s}`);
  const inSchemas = lines(await pgRestoreOutput(pgRestore, ['--list', ...schemaArgs], await openArchive(), signal));
  const inSchemaIds = new Set(inSchemas.map((line) => ENTRY.exec(line)?.[1]));
  const foreign = all.filter((line) => {
    if (inSchemaIds.has(ENTRY.exec(line)?.[1])) return false;
    const m = SCHEMA_LEVEL.exec(line);
    const schema = m?.[1] ?? m?.[2] ?? m?.[3];
    return schema === undefined || !schemas.includes(schema);
  });
  if (foreign.length > 0) {
    throw permanentFailure(
      FailureType.RestoreRefused,
      `archive ${target.archive} holds ${foreign.length} entr${foreign.length === 1 ? 'y' : 'ies'} outside the organization's schemas (${schemas.join(', ')}), so it is not restored; nothing was changed: ${foreign
        .slice(0, 20)
        .map((l) => l.replace(ENTRY, ''))
        .join('; ')}${foreign.length > 20 ? '; …' : ''}`,
      { store: 'postgres', orgId: target.orgId, object: target.archive },
    );
  }
  const kept = inSchemas.filter((line) => !(target.privilegesApart && APPLIED_APART.test(line)));
  const dir = await mkdtemp(path.join(tmpdir(), 'restore-list-'));
  try {
    const listFile = path.join(dir, 'list');
    await writeFile(listFile, kept.length > 0 ? `${kept.join('\n')}\n` : '');
    return await work({ schemas, listFile, schemaArgs, entries: kept.length });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
