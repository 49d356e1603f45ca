import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { writeArtifact, type BackupStore } from '../src/storage/backup-store';
import { ApplicationFailure } from '@temporalio/common';
import { BackupAuthenticator } from '../src/storage/backup-authentication';
import { FilesystemBackupStore } from '../src/storage/filesystem-backup-store';
import { FileKeyStore } from '../src/storage/key-store';

/** test/fixtures/backup-store-v1/README.md says how the fixture was written, and with which key. */
const FIXTURE = path.join(__dirname, 'fixtures', 'backup-store-v1');
const MASTER_KEY = Buffer.alloc(32, 0x42);

let root: string;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'eloquent-compat-'));
  await cp(path.join(FIXTURE, 'tree'), root, { recursive: true });
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function storeAt(
  directory: string,
  keys: 'with the fixture key' | 'without a key',
  unauthenticated: 'accepted' | 'refused' = 'accepted',
): FilesystemBackupStore {
  const masterKey = keys === 'with the fixture key' ? MASTER_KEY : undefined;
  const keyStore = new FileKeyStore({ directory, masterKey });
  // The fixture predates authentication: a store with a key reads it only when told to (BACKUP_ACCEPT_UNAUTHENTICATED).
  const authenticator = new BackupAuthenticator({ keyStore, acceptUnauthenticated: unauthenticated === 'accepted' });
  return new FilesystemBackupStore({ directory, keyStore, authenticator });
}

/** Everything the store says about its content: the same walk that wrote description.json. */
async function describe(store: BackupStore): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { organizations: await store.listOrganizations() };
  for (const orgId of await store.listOrganizations()) {
    const backups = [];
    for (const listing of await store.listBackups(orgId)) {
      const artifacts = [];
      for (const artifact of await store.listArtifacts(listing)) {
        const ref = { ...listing, path: artifact.path };
        const original = createHash('sha256');
        for await (const chunk of await store.openArtifactReader(ref)) original.update(chunk as Buffer);
        artifacts.push({
          ...artifact,
          stat: await store.statArtifact(ref),
          verify: await store.verifyArtifactChecksum(ref, artifact.sha256),
          originalSha256: original.digest('hex'),
        });
      }
      backups.push({
        listing,
        artifacts,
        manifest: (await store.readJson(listing, 'manifest.json')) ?? null,
        verification: (await store.readJson(listing, 'verification.json')) ?? null,
      });
    }
    out[orgId] = backups;
  }
  return out;
}

test('a store written before the split into layers lists, stats, verifies and reads back exactly as it did then', async () => {
  const expected = JSON.parse(await readFile(path.join(FIXTURE, 'description.json'), 'utf8')) as unknown;
  expect(await describe(storeAt(root, 'with the fixture key'))).toEqual(expected);
});

test('with a key configured and unauthenticated documents not accepted, the older backups are refused by name, naming the setting that accepts them', async () => {
  const store = storeAt(root, 'with the fixture key', 'refused');
  const manifest = await store.readJson({ orgId: 'org_enc', backupId: 'b2' }, 'manifest.json').catch((e: unknown) => e);
  expect(manifest).toBeInstanceOf(ApplicationFailure);
  expect((manifest as Error).message).toMatch(
    /manifest org_enc\/b2\/manifest.json is not authenticated.*BACKUP_ACCEPT_UNAUTHENTICATED=true/,
  );
  const read = await store
    .openArtifactReader({ orgId: 'org_plain', backupId: 'b1', path: 'postgres/schemas.dump' })
    .catch((e: unknown) => e);
  expect((read as Error).message).toMatch(
    /metadata of artifact org_plain\/b1\/postgres\/schemas.dump is not authenticated/,
  );
  // Listing still works: it reads sizes only.
  expect((await store.listBackups('org_enc')).map((b) => b.backupId)).toEqual(['b2']);
});

test('artifacts stored as they come are written byte for byte as before, with the same records', async () => {
  const fresh = await mkdtemp(path.join(os.tmpdir(), 'eloquent-compat-new-'));
  try {
    const store = storeAt(fresh, 'without a key');
    const backup = { orgId: 'org_plain', backupId: 'b1' };
    const native = Buffer.from(Array.from({ length: 100 }, (_, i) => `native\t${i}\trow ${i * 31}\n`).join(''));
    const written = [
      await writeArtifact(
        store,
        { ...backup, path: 'postgres/schemas.dump' },
        Readable.from([Buffer.from('PGDMP-not-really\n'.repeat(20))]),
        { alreadyCompressed: true },
      ),
      await writeArtifact(store, { ...backup, path: 'clickhouse/kg_nodes.native' }, Readable.from([gzipSync(native)]), {
        alreadyCompressed: false,
        gzipped: true,
      }),
    ];
    for (const record of written) {
      const file = (dir: string) => path.join(dir, 'org_plain', 'b1', ...record.path.split('/'));
      expect(await readFile(file(fresh))).toEqual(await readFile(file(path.join(FIXTURE, 'tree'))));
      const before = JSON.parse(await readFile(`${file(path.join(FIXTURE, 'tree'))}.meta.json`, 'utf8')) as Record<
        string,
        unknown
      >;
      const after = JSON.parse(await readFile(`${file(fresh)}.meta.json`, 'utf8')) as Record<string, unknown>;
      expect(Object.keys(after)).toEqual(Object.keys(before));
      expect({ ...after, committedAt: undefined }).toEqual({ ...before, committedAt: undefined });
    }
  } finally {
    await rm(fresh, { recursive: true, force: true });
  }
});
