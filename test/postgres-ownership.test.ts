import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { backupManifestSchema } from '../src/contracts/backup';
import { deletionWorkflowId, type DeleteOrganizationInput } from '../src/contracts/deletion';
import { organizationDataMap } from '../src/platform/data-map';
import { fingerprintOrganization } from '../src/platform/fingerprint';
import { quotePgIdent, quotePgQualified } from '../src/platform/quoting';
import { dropSeededOrganization } from '../src/platform/seed-organization';
import { backupOrganization, deleteOrganization, restoreOrganization } from '../src/workflows';
import { createBareOrganization } from './support/bare-organization';
import { terminateIfRunning } from './support/deletion';
import { failureText, rejectionOf } from './support/failures';
import { startTestWorker, uniqueOrgId, type TestWorker } from './support/test-worker';

/**
 * What an organization owns in PostgreSQL beyond its rows: privileges (owners, grants, default
 * privileges, policies), what lies outside its schemas (tables holding its rows, large objects,
 * types, dependents of its schemas), and archives holding nothing else.
 */
describe('PostgreSQL ownership and privileges', () => {
  let env: TestWorker;
  const roles: string[] = [];
  const workflows: string[] = [];

  beforeAll(async () => {
    env = await startTestWorker('pgowner');
  });
  afterAll(async () => {
    if (!env) return;
    for (const id of workflows) await terminateIfRunning(env.client, id);
    for (const role of roles) {
      await env.clients.postgres.query(`DROP ROLE IF EXISTS ${quotePgIdent(role)}`).catch(() => undefined);
    }
    await env.shutdown();
  });

  /** Runs `work` on a fresh organization and removes it, its backups included, whatever happens. */
  async function withOrganization(
    prefix: string,
    work: (orgId: string, schema: string) => Promise<void>,
    extraOrgs: string[] = [],
  ): Promise<void> {
    const orgId = uniqueOrgId(prefix);
    try {
      await work(orgId, await createBareOrganization(env.clients, orgId));
    } finally {
      for (const id of [orgId, ...extraOrgs]) {
        await dropSeededOrganization(env.clients, id).catch(() => undefined);
        await rm(path.join(env.config.backup.directory, id), { recursive: true, force: true });
      }
    }
  }

  /** A role of this test run only, removed at the end. */
  async function createRole(prefix: string): Promise<string> {
    const role = uniqueOrgId(prefix);
    roles.push(role);
    await env.clients.postgres.query(`CREATE ROLE ${quotePgIdent(role)} NOLOGIN`);
    return role;
  }

  async function backUp(orgId: string, verify = true) {
    return env.client.workflow.execute(backupOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `backup-${orgId}-${Date.now()}`,
      args: [{ orgId, reason: 'ownership test', stores: ['postgres'], verify }],
    });
  }

  async function restore(backupId: string, orgId: string, extra: Record<string, unknown> = {}) {
    return env.client.workflow.execute(restoreOrganization, {
      taskQueue: env.taskQueue,
      workflowId: `restore-${orgId}-${Date.now()}`,
      args: [{ backupId, orgId, mode: 'into-empty', ...extra }],
    });
  }

  /** As `role`, in a transaction rolled back at the end: what the application would see. */
  async function asRole(role: string, sql: string): Promise<unknown[]> {
    const client = await env.clients.postgres.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL ROLE ${quotePgIdent(role)}`);
      return (await client.query(sql)).rows as unknown[];
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }

  /** Grants an application role what an application needs, a policy and default privileges included. */
  async function grantApplication(schema: string, role: string): Promise<void> {
    const s = quotePgIdent(schema);
    const r = quotePgIdent(role);
    await env.clients.postgres.query(`
      CREATE TABLE ${s}.notes (id integer PRIMARY KEY, owner text NOT NULL, body text);
      INSERT INTO ${s}.notes VALUES (1, 'app', 'visible'), (2, 'other', 'hidden by the policy');
      CREATE TABLE ${s}.private (id integer);
      GRANT USAGE ON SCHEMA ${s} TO ${r};
      GRANT SELECT, INSERT ON ${s}.notes TO ${r};
      GRANT UPDATE (body) ON ${s}.notes TO ${r};
      REVOKE ALL ON ${s}.private FROM PUBLIC;
      ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT ON TABLES TO ${r};
      ALTER TABLE ${s}.notes ENABLE ROW LEVEL SECURITY;
      CREATE POLICY app_rows ON ${s}.notes TO ${r} USING (owner = 'app');`);
  }

  it('a restored organization’s grants, default privileges and policies work for the application role, also under a mapped role in a clone', async () => {
    const app = await createRole('app');
    const appEu = await createRole('appeu');
    const clone = uniqueOrgId('ownc');
    await withOrganization(
      'own',
      async (orgId, schema) => {
        await grantApplication(schema, app);
        const query = `SELECT id, body FROM ${quotePgIdent(schema)}.notes ORDER BY id`;
        expect(await asRole(app, query)).toEqual([{ id: 1, body: 'visible' }]);
        const summary = await backUp(orgId);
        expect(summary.verification?.passed).toBe(true);

        await dropSeededOrganization(env.clients, orgId);
        const back = await restore(summary.backupId, orgId);
        expect(back.comparisons.every((c) => c.equal)).toBe(true);
        expect(back.comparisons.some((c) => c.object === 'privileges:org_{org}')).toBe(true);
        expect(await asRole(app, query)).toEqual([{ id: 1, body: 'visible' }]);
        await asRole(app, `UPDATE ${quotePgIdent(schema)}.notes SET body = 'changed' WHERE id = 1`);
        // Default privileges came back too: a table created now is readable by the role.
        await env.clients.postgres.query(`CREATE TABLE ${quotePgIdent(schema)}.later (id integer)`);
        expect(await asRole(app, `SELECT * FROM ${quotePgIdent(schema)}.later`)).toEqual([]);
        expect(failureText(await rejectionOf(asRole(app, `SELECT * FROM ${quotePgIdent(schema)}.private`)))).toMatch(
          /permission denied/,
        );
        await env.clients.postgres.query(`DROP TABLE ${quotePgIdent(schema)}.later`);

        // A clone whose application runs as another role: the grants follow the mapping.
        const cloned = await env.client.workflow.execute(restoreOrganization, {
          taskQueue: env.taskQueue,
          workflowId: `restore-${clone}-${Date.now()}`,
          args: [
            {
              backupId: summary.backupId,
              orgId,
              targetOrgId: clone,
              mode: 'into-empty',
              roleMapping: { [app]: appEu },
            },
          ],
        });
        expect(cloned.comparisons.every((c) => c.equal)).toBe(true);
        const cloneSchema = organizationDataMap(clone).postgres.mainSchema;
        expect(await asRole(appEu, `SELECT id, body FROM ${quotePgIdent(cloneSchema)}.notes ORDER BY id`)).toEqual([
          { id: 1, body: 'visible' },
        ]);
        expect(failureText(await rejectionOf(asRole(app, `SELECT * FROM ${quotePgIdent(cloneSchema)}.notes`)))).toMatch(
          /permission denied/,
        );
      },
      [clone],
    );
  });

  it('a role the target lacks refuses the restore naming it, before anything changes; a lost grant changes the fingerprint', async () => {
    const app = await createRole('app');
    const clone = uniqueOrgId('ownm');
    await withOrganization(
      'ownm',
      async (orgId, schema) => {
        await grantApplication(schema, app);
        const summary = await backUp(orgId, false);
        const refused = failureText(
          await rejectionOf(
            restore(summary.backupId, orgId, { targetOrgId: clone, roleMapping: { [app]: 'no_such_role_x' } }),
          ),
        );
        expect(refused).toContain('no_such_role_x');
        expect(refused).toContain(app);
        const cloneSchema = organizationDataMap(clone).postgres.mainSchema;
        const exists = await env.clients.postgres.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [cloneSchema]);
        expect(exists.rowCount).toBe(0);

        const privileges = async () =>
          (await fingerprintOrganization(env.clients, orgId, ['postgres'])).objects.find(
            (o) => o.object === 'privileges:org_{org}',
          );
        const before = await privileges();
        await env.clients.postgres.query(`REVOKE INSERT ON ${quotePgIdent(schema)}.notes FROM ${quotePgIdent(app)}`);
        expect((await privileges())?.hash).not.toBe(before?.hash);
      },
      [clone],
    );
  });

  it('an archive holding an entry outside the organization’s schemas is refused naming it, and nothing is restored', async () => {
    const clone = uniqueOrgId('ownt');
    const foreign = `pg13_foreign_${uniqueOrgId('x')}`;
    await withOrganization(
      'ownt',
      async (orgId, schema) => {
        await env.clients.postgres.query(`CREATE TABLE ${quotePgIdent(schema)}.rows (id integer)`);
        const summary = await backUp(orgId, false);
        // Tamper: the same organization's archive, plus a schema of someone else's, checksums made to match.
        await env.clients.postgres.query(
          `CREATE SCHEMA ${quotePgIdent(foreign)}; CREATE TABLE ${quotePgQualified(foreign, 'planted')} (id integer)`,
        );
        const dir = path.join(env.config.backup.directory, orgId, summary.backupId);
        const dumpFile = path.join(dir, 'postgres', 'schemas.dump');
        const plainFile = `${dumpFile}.plain`;
        try {
          await runPgDump(['--format=custom', `--schema=${schema}`, `--schema=${foreign}`, `--file=${plainFile}`]);
        } finally {
          await env.clients.postgres.query(`DROP SCHEMA ${quotePgIdent(foreign)} CASCADE`);
        }
        // Stored as the backup stores its archive (zstd, manifest `compression: "zstd"`), so only the TOC is wrong.
        const rawBytes = (await readFile(plainFile)).length;
        await runTool('zstd', ['-1', '-q', '-f', '--rm', '-o', dumpFile, plainFile]);
        const bytes = await readFile(dumpFile);
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        const manifestFile = path.join(dir, 'manifest.json');
        const manifest = backupManifestSchema.parse(JSON.parse(await readFile(manifestFile, 'utf8')));
        const patched = manifest.artifacts.map((a) =>
          a.file === 'postgres/schemas.dump' ? { ...a, sha256, bytes: bytes.length, rawBytes } : a,
        );
        await writeFile(manifestFile, JSON.stringify({ ...manifest, artifacts: patched }));
        const sidecar = `${dumpFile}.meta.json`;
        const meta = JSON.parse(await readFile(sidecar, 'utf8').catch(() => '{}')) as Record<string, unknown>;
        await writeFile(sidecar, JSON.stringify({ ...meta, sha256, bytes: bytes.length, rawBytes }));

        const refused = failureText(await rejectionOf(restore(summary.backupId, orgId, { targetOrgId: clone })));
        expect(refused).toMatch(new RegExp(`TABLE ${foreign} planted`));
        const left = await env.clients.postgres.query('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1)', [
          [foreign, organizationDataMap(clone).postgres.mainSchema],
        ]);
        expect(left.rows).toEqual([]);
      },
      [clone],
    );
  });

  it('a backup refuses, naming them, a public table holding the organization’s rows, large objects and a stray type; citext from an extension verifies', async () => {
    await env.clients.postgres.query('CREATE EXTENSION IF NOT EXISTS citext').catch(() => undefined);
    await withOrganization('ownb', async (orgId, schema) => {
      const s = quotePgIdent(schema);
      await env.clients.postgres.query(`CREATE TABLE ${s}.people (id integer PRIMARY KEY, email public.citext)`);
      await env.clients.postgres.query(`INSERT INTO ${s}.people VALUES (1, 'A@Example.com'), (2, NULL)`);
      const summary = await backUp(orgId);
      expect(summary.verification?.passed).toBe(true);

      const outside = `pg13_notes_${orgId}`;
      const stray = `pg13_email_${orgId}`;
      await env.clients.postgres.query(
        `CREATE TABLE public.${quotePgIdent(outside)} (org_id text, body text); INSERT INTO public.${quotePgIdent(outside)} VALUES ($$${orgId}$$, 'x')`,
      );
      const lo = await env.clients.postgres.query<{ oid: number }>('SELECT lo_from_bytea(0, $1::bytea) AS oid', [
        '\\x00ff',
      ]);
      const loOid = lo.rows[0]?.oid ?? 0;
      await env.clients.postgres.query(`CREATE DOMAIN public.${quotePgIdent(stray)} AS text`);
      try {
        await env.clients.postgres.query(
          `CREATE TABLE ${s}.files (id integer, blob oid, contact public.${quotePgIdent(stray)}); INSERT INTO ${s}.files VALUES (1, ${loOid}, 'x')`,
        );
        const refused = failureText(await rejectionOf(backUp(orgId, false)));
        expect(refused).toContain(`table public.${outside} holds rows of organization ${orgId} (column org_id)`);
        expect(refused).toContain('PLATFORM_MODEL_FILE');
        expect(refused).toContain(`column ${schema}.files.blob points at 1 large object(s)`);
        expect(refused).toContain(`type public.${stray}, used by ${schema}.files.contact`);
      } finally {
        await env.clients.postgres.query(`DROP TABLE IF EXISTS ${s}.files`);
        await env.clients.postgres.query(`DROP TABLE IF EXISTS public.${quotePgIdent(outside)}`);
        await env.clients.postgres.query(`DROP DOMAIN IF EXISTS public.${quotePgIdent(stray)}`);
        await env.clients.postgres.query('SELECT lo_unlink($1)', [loOid]);
      }
    });
  });

  it('a deletion refuses, changing nothing, when a neighbour’s view depends on the organization’s table', async () => {
    await withOrganization('ownd', async (orgId, schema) => {
      const view = `pg13_view_${orgId}`;
      await env.clients.postgres.query(
        `CREATE TABLE ${quotePgIdent(schema)}.rows (id integer); INSERT INTO ${quotePgIdent(schema)}.rows VALUES (1)`,
      );
      await env.clients.postgres.query(
        `CREATE VIEW public.${quotePgIdent(view)} AS SELECT id FROM ${quotePgIdent(schema)}.rows`,
      );
      try {
        const request: DeleteOrganizationInput = {
          orgId,
          confirmOrgId: orgId,
          requestedBy: 'jest',
          reason: 'ownership test',
          gracePeriod: '0s',
          backupRetention: '1h',
          storeDownAfter: '30s',
        };
        workflows.push(deletionWorkflowId(orgId));
        const refused = failureText(
          await rejectionOf(
            env.client.workflow.execute(deleteOrganization, {
              taskQueue: env.taskQueue,
              workflowId: deletionWorkflowId(orgId),
              args: [request],
            }),
          ),
        );
        expect(refused).toContain(`view public.${view} depends on`);
        const status = await env.clients.postgres.query('SELECT status FROM public.organizations WHERE id = $1', [
          orgId,
        ]);
        expect(status.rows).toEqual([{ status: 'active' }]);
        expect((await env.clients.postgres.query(`SELECT * FROM public.${quotePgIdent(view)}`)).rows).toEqual([
          { id: 1 },
        ]);
        // No pre-deletion backup was taken either: the check comes before it.
        const backups = await readdirOrEmpty(path.join(env.config.backup.directory, orgId));
        expect(backups).toEqual([]);
      } finally {
        await env.clients.postgres.query(`DROP VIEW IF EXISTS public.${quotePgIdent(view)}`);
      }
    });
  });

  async function readdirOrEmpty(dir: string): Promise<string[]> {
    return readdir(dir).catch(() => []);
  }

  async function runPgDump(args: string[]): Promise<void> {
    const bin = env.config.postgres.binDir ? path.join(env.config.postgres.binDir, 'pg_dump') : 'pg_dump';
    await runTool(bin, [...args, `--dbname=${env.config.postgres.url}`]);
  }

  async function runTool(bin: string, args: string[]): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', reject);
      child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${bin} failed: ${stderr}`))));
    });
  }
});
