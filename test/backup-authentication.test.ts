import { randomBytes } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { ApplicationFailure } from '@temporalio/common';
import { writeArtifact, type BackupRef } from '../src/storage/backup-store';
import { createFilesystemBackupStore } from '../src/storage/filesystem-backup-store';

/**
 * Nothing read back from a backup is trusted: manifests and sidecars are authenticated (under the
 * data key, or a configured secret) and encrypted chunks are bound to their backup and path. Each
 * test tampers with the files as an attacker with write access to the store would.
 */
let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'eloquent-auth-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const encrypted = () => ({ directory: root, masterKeyBase64: randomBytes(32).toString('base64') });
const withSecret = () => ({
  directory: root,
  masterKeyBase64: undefined,
  authenticationSecretBase64: randomBytes(32).toString('base64'),
});
type Settings = Parameters<typeof createFilesystemBackupStore>[0];

const orgId = 'org_auth';
const first: BackupRef = { orgId, backupId: 'b1' };
const second: BackupRef = { orgId, backupId: 'b2' };
const file = (backup: BackupRef, name: string) => path.join(root, backup.orgId, backup.backupId, ...name.split('/'));

/** Two backups of one organization, each with one artifact at the same path and a manifest. */
async function twoBackups(settings: Settings) {
  const store = createFilesystemBackupStore(settings);
  for (const [backup, text] of [
    [first, 'CREATE TABLE org_auth.t (a UInt8) ENGINE = Memory'],
    [second, 'CREATE TABLE org_auth.t (a UInt8, b UInt8) ENGINE = Memory'],
  ] as const) {
    const record = await writeArtifact(store, { ...backup, path: 'clickhouse/t.sql' }, Readable.from([text]), {
      alreadyCompressed: false,
    });
    await store.writeJson(backup, 'manifest.json', { backupId: backup.backupId, artifacts: [record] });
  }
  return store;
}

const failureOf = async (promise: Promise<unknown>) => {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return (error as ApplicationFailure).message;
};

const readText = async (store: ReturnType<typeof createFilesystemBackupStore>, backup: BackupRef) => {
  const chunks: Buffer[] = [];
  for await (const chunk of await store.openArtifactReader({ ...backup, path: 'clickhouse/t.sql' }))
    chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

describe.each([
  ['under the data key (encrypted store)', encrypted],
  ['under BACKUP_AUTHENTICATION_SECRET (plain store)', withSecret],
])('documents authenticated %s', (_name, settings) => {
  test('read back as written', async () => {
    const store = await twoBackups(settings());
    expect(await store.readJson(first, 'manifest.json')).toEqual({
      backupId: 'b1',
      artifacts: [expect.objectContaining({ path: 'clickhouse/t.sql' })],
    });
    expect(await readText(store, first)).toMatch(/^CREATE TABLE org_auth.t \(a UInt8\)/);
  });

  test('a manifest edited by hand is refused, naming it', async () => {
    const store = await twoBackups(settings());
    const manifest = JSON.parse(await readFile(file(first, 'manifest.json'), 'utf8')) as { backupId: string };
    await writeFile(file(first, 'manifest.json'), JSON.stringify({ ...manifest, reason: 'edited' }));
    expect(await failureOf(store.readJson(first, 'manifest.json'))).toMatch(
      /manifest org_auth\/b1\/manifest.json fails authentication/,
    );
  });

  test('a manifest whose authentication was removed (a downgrade) is refused, and accepted only when configured', async () => {
    const config = settings();
    const store = await twoBackups(config);
    const { authentication: _removed, ...stripped } = JSON.parse(
      await readFile(file(first, 'manifest.json'), 'utf8'),
    ) as Record<string, unknown>;
    await writeFile(file(first, 'manifest.json'), JSON.stringify(stripped));
    expect(await failureOf(store.readJson(first, 'manifest.json'))).toMatch(/is not authenticated/);
    const accepting = createFilesystemBackupStore({ ...config, acceptUnauthenticated: true });
    expect(await accepting.readJson(first, 'manifest.json')).toEqual(stripped);
  });

  test('a manifest copied from another backup is refused', async () => {
    const store = await twoBackups(settings());
    await cp(file(second, 'manifest.json'), file(first, 'manifest.json'));
    expect(await failureOf(store.readJson(first, 'manifest.json'))).toMatch(/fails authentication/);
  });

  test('an artifact swapped in from another backup, with its sidecar, is refused by name before a byte is read', async () => {
    const store = await twoBackups(settings());
    for (const name of ['clickhouse/t.sql', 'clickhouse/t.sql.meta.json'])
      await cp(file(second, name), file(first, name));
    const ref = { ...first, path: 'clickhouse/t.sql' };
    expect(await failureOf(store.openArtifactReader(ref))).toMatch(
      /metadata of artifact org_auth\/b1\/clickhouse\/t.sql fails authentication/,
    );
    expect(await failureOf(store.statArtifact(ref))).toMatch(/fails authentication/);
  });
});

test('an encrypted artifact swapped in from another backup fails decryption even where unauthenticated sidecars are accepted', async () => {
  const config = { ...encrypted(), acceptUnauthenticated: true };
  const store = await twoBackups(config);
  // The attacker copies the data and writes a format-1 (unauthenticated) sidecar describing it.
  await cp(file(second, 'clickhouse/t.sql'), file(first, 'clickhouse/t.sql'));
  const sidecar = JSON.parse(await readFile(file(second, 'clickhouse/t.sql.meta.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  const { authentication: _a, ...unsigned } = sidecar;
  await writeFile(file(first, 'clickhouse/t.sql.meta.json'), JSON.stringify({ ...unsigned, formatVersion: 1 }));
  const failure = await readText(store, first).then(
    () => 'read',
    (e: unknown) => (e as Error).message,
  );
  expect(failure).toMatch(
    /artifact org_auth\/b1\/clickhouse\/t.sql failed authentication at chunk 0.*another backup or path/,
  );
});

test('without any key nothing is authenticated, and the sidecar stays in format 1', async () => {
  const store = await twoBackups({ directory: root, masterKeyBase64: undefined });
  const sidecar = JSON.parse(await readFile(file(first, 'clickhouse/t.sql.meta.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  expect(sidecar.formatVersion).toBe(1);
  expect(sidecar.authentication).toBeUndefined();
  expect(await store.readJson(first, 'manifest.json')).toMatchObject({ backupId: 'b1' });
});
