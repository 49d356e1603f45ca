import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { backupManifestSchema, type BackupManifest } from '../src/contracts/backup';
import { parseSetvalStatements } from '../src/platform/archive-sequences';
import { DEFAULT_PLATFORM_MODEL } from '../src/platform/data-map';
import { fingerprintOrganization } from '../src/platform/fingerprint';
import { quotePgIdent, quotePgLiteral } from '../src/platform/quoting';
import { dropSeededOrganization } from '../src/platform/seed-organization';
import { backupOrganization, verifyBackup } from '../src/workflows';
import { createBareOrganization } from './support/bare-organization';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

describe('PostgreSQL fidelity of a backup', () => {
  let env: TestWorker;

  beforeAll(async () => {
    env = await startTestWorker('pgfidelity');
  });
  afterAll(async () => {
    await env?.shutdown();
  });

  /** Runs `work` on a fresh organization and removes it, its backups included, whatever happens. */
  async function withOrganization(
    prefix: string,
    work: (orgId: string, schema: string) => Promise<void>,
    worker: TestWorker = env,
  ): Promise<void> {
    const orgId = uniqueOrgId(prefix);
    try {
      await work(orgId, await createBareOrganization(worker.clients, orgId));
    } finally {
      await dropSeededOrganization(worker.clients, orgId).catch(() => undefined);
      await rm(path.join(worker.config.backup.directory, orgId), { recursive: true, force: true });
    }
  }

  /** A verified PostgreSQL backup; the failure, with its whole cause chain, when it does not verify. */
  async function backUpVerified(orgId: string, worker: TestWorker = env) {
    try {
      return await worker.client.workflow.execute(backupOrganization, {
        taskQueue: worker.taskQueue,
        workflowId: `backup-${orgId}-${Date.now()}`,
        args: [{ orgId, reason: 'fidelity test', stores: ['postgres'], verify: true }],
      });
    } catch (err) {
      throw new Error(failureText(err), { cause: err });
    }
  }

  const manifestFile = (orgId: string, backupId: string) =>
    path.join(env.config.backup.directory, orgId, backupId, 'manifest.json');
  const readManifest = async (orgId: string, backupId: string) =>
    backupManifestSchema.parse(JSON.parse(await readFile(manifestFile(orgId, backupId), 'utf8')));
  const verify = (orgId: string, backupId: string, name: string) =>
    env.client.workflow.execute(verifyBackup, {
      taskQueue: env.taskQueue,
      workflowId: `verify-${name}-${backupId}-${Date.now()}`,
      args: [{ orgId, backupId }],
    });

  it('an organization with enums, arrays, domains, composites and ranges over enums, and catalog-id columns verifies', async () => {
    await withOrganization('pgenum', async (orgId, schema) => {
      const s = quotePgIdent(schema);
      await env.clients.postgres.query(`
        CREATE TYPE ${s}.mood AS ENUM ('sad', 'ok', 'happy');
        CREATE DOMAIN ${s}.good_mood AS ${s}.mood CHECK (VALUE <> 'sad');
        CREATE TYPE ${s}.reading AS (mood ${s}.mood, score integer);
        CREATE TYPE ${s}.mood_range AS RANGE (subtype = ${s}.mood);
        CREATE TABLE ${s}.feelings (
          id integer PRIMARY KEY, mood ${s}.mood, moods ${s}.mood[], good ${s}.good_mood, reading ${s}.reading,
          readings ${s}.reading[], span ${s}.mood_range, spans ${s}.mood_multirange, note text);
        CREATE TABLE ${s}.catalog_ids (id integer PRIMARY KEY, rel regclass, typ regtype, fn regprocedure, ns regnamespace, ids oid[]);
        CREATE TABLE ${s}.plain (id integer PRIMARY KEY, body text);
        INSERT INTO ${s}.feelings
        SELECT g, (ARRAY['sad', 'ok', 'happy'])[1 + g % 3]::${s}.mood, ARRAY['ok', 'happy']::${s}.mood[],
               CASE WHEN g % 5 = 0 THEN NULL ELSE 'happy' END::${s}.good_mood, ROW('ok', g)::${s}.reading,
               ARRAY[ROW('sad', 1), ROW('happy', g)]::${s}.reading[], ${s}.mood_range('sad', 'happy'),
               ${s}.mood_multirange(${s}.mood_range('sad', 'ok'), ${s}.mood_range('happy', NULL)), 'row ' || g
          FROM generate_series(1, 300) g;
        INSERT INTO ${s}.catalog_ids VALUES
          (1, ${quotePgLiteral(`${schema}.feelings`)}, ${quotePgLiteral(`${schema}.mood`)}, 'pg_catalog.lower(text)', ${quotePgLiteral(schema)}, ARRAY[1, 2]::oid[]),
          (2, ${quotePgLiteral(`${schema}.plain`)}, ${quotePgLiteral(`${schema}.reading[]`)}, NULL, NULL, NULL);
        INSERT INTO ${s}.plain SELECT g, 'body ' || g FROM generate_series(1, 100) g;`);
      const summary = await backUpVerified(orgId);
      expect(summary.verification?.passed).toBe(true);
      const manifest = await readManifest(orgId, summary.backupId);
      expect(manifest.fingerprint.postgresRowHash).toBe('portable-record-hash');
      expect(manifest.fingerprint.objects.find((o) => o.object === 'schema:org_{org}.feelings')?.rows).toBe(300);
    });
  });

  it('a manifest of the record-hash release still verifies with record-hash, which hashes a regclass by OID unlike today’s row hash', async () => {
    await withOrganization('pgold', async (orgId, schema) => {
      const s = quotePgIdent(schema);
      // pg_class has the same OID in every database: record-hash verified such a table, though by OID.
      await env.clients.postgres.query(`CREATE TABLE ${s}.watched (id integer PRIMARY KEY, rel regclass);
        INSERT INTO ${s}.watched SELECT g, 'pg_catalog.pg_class' FROM generate_series(1, 20) g;`);
      const summary = await backUpVerified(orgId);
      const manifest = await readManifest(orgId, summary.backupId);
      const older = await fingerprintOrganization(env.clients, orgId, ['postgres'], DEFAULT_PLATFORM_MODEL, {
        postgresRowHash: 'record-hash',
      });
      const watched = (objects: BackupManifest['fingerprint']['objects']) =>
        objects.find((o) => o.object === 'schema:org_{org}.watched')?.hash;
      expect(watched(older.objects)).not.toBe(watched(manifest.fingerprint.objects));
      const relabel = (postgresRowHash: 'record-hash' | 'portable-record-hash') =>
        writeFile(
          manifestFile(orgId, summary.backupId),
          JSON.stringify({
            ...manifest,
            fingerprint: { ...manifest.fingerprint, postgresRowHash, objects: older.objects },
          }),
        );
      await relabel('record-hash');
      expect((await verify(orgId, summary.backupId, 'record-hash')).result).toBe('passed');
      await relabel('portable-record-hash');
      expect(failureText(await rejectionOf(verify(orgId, summary.backupId, 'mislabelled')))).toMatch(
        /schema:org_\{org\}\.watched/,
      );
    });
  });

  /**
   * Backs up a fresh organization while a loop calls nextval on its two sequences; the backup must verify.
   * @returns whether the archive was stored encrypted.
   */
  async function backUpWhileSequencesMove(worker: TestWorker): Promise<boolean | undefined> {
    let encrypted: boolean | undefined;
    await withOrganization(
      'pgseq',
      async (orgId, schema) => {
        const s = quotePgIdent(schema);
        await worker.clients.postgres.query(`
          CREATE SEQUENCE ${s}.ticket_numbers;
          CREATE TABLE ${s}.tickets (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);
          INSERT INTO ${s}.tickets (body) SELECT repeat(md5(g::text), 4) FROM generate_series(1, 50000) g;`);
        const writer = await worker.clients.postgres.connect();
        let writing = true;
        let calls = 0;
        const writes = (async () => {
          while (writing) {
            await writer.query(
              `SELECT nextval('${schema}.ticket_numbers'), nextval(pg_get_serial_sequence('${schema}.tickets', 'id'))`,
            );
            calls++;
          }
        })();
        try {
          const summary = await backUpVerified(orgId, worker);
          expect(summary.verification?.passed).toBe(true);
          const manifest = backupManifestSchema.parse(
            JSON.parse(
              await readFile(
                path.join(worker.config.backup.directory, orgId, summary.backupId, 'manifest.json'),
                'utf8',
              ),
            ),
          );
          encrypted = manifest.artifacts.find((a) => a.object === 'schemas')?.encrypted;
        } finally {
          writing = false;
          await writes.catch(() => undefined);
          writer.release();
        }
        // The sequences really moved while the backup ran.
        expect(calls).toBeGreaterThan(50);
      },
      worker,
    );
    return encrypted;
  }

  it('nextval on the organization’s sequences all through a backup does not fail its verification', async () => {
    expect(await backUpWhileSequencesMove(env)).toBe(false);
  });

  it('an encrypted backup’s sequence states are read back through the decrypting reader', async () => {
    const directory = await mkdtemp(path.join(tmpdir(), 'eloquent-pgfidelity-'));
    const encrypted = await startTestWorker('pgfidelity-encrypted', {
      BACKUP_MASTER_KEY: randomBytes(32).toString('base64'),
      BACKUP_DIR: directory,
    });
    try {
      expect(await backUpWhileSequencesMove(encrypted)).toBe(true);
    } finally {
      await encrypted.shutdown();
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('reads sequence states from pg_dump’s setval statements, names quoted with doubled quotes inside a string literal', () => {
    const script = `SET standard_conforming_strings = on;\nSELECT pg_catalog.setval('"Org X"."se''q ""1""".ü', 1, false);\nSELECT pg_catalog.setval('org_a.tickets_id_seq', -9223372036854775808, true);\n`;
    expect(parseSetvalStatements(script.replace('.ü', ''))).toEqual([
      { schema: 'Org X', name: `se'q "1"`, lastValue: '1', isCalled: false },
      { schema: 'org_a', name: 'tickets_id_seq', lastValue: '-9223372036854775808', isCalled: true },
    ]);
    expect(() => parseSetvalStatements(script)).toThrow(/not a qualified name|schema-qualified/);
  });
});
