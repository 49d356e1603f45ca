/**
 * Operator commands for the backup encryption keys (`npm run keys -- <command>`).
 *
 *   rotate [--new-key-file F]   re-wrap every organization's data key from BACKUP_MASTER_KEY to the new
 *                               master key (file with base64 of 32 bytes, or env NEW_BACKUP_MASTER_KEY).
 *                               No artifact is read or rewritten. Resumable: run it again after a crash.
 *                               Afterwards set BACKUP_MASTER_KEY to the new key and restart the workers.
 *   status                      each organization's data key id, the master key id wrapping it, and
 *                               destroyed (crypto-shredded) key ids. Prints no key material.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config';
import { messageOf } from '../src/errors';
import { masterKeyId, parseMasterKey } from '../src/storage/encryption';
import { createKeyStore } from '../src/storage/configured-backup-store';

const USAGE =
  'usage: npm run keys -- rotate [--new-key-file FILE]   (or env NEW_BACKUP_MASTER_KEY)\n       npm run keys -- status';

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'new-key-file': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const command = positionals[0];
  if (values.help || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const config = loadConfig();
  const oldKey =
    config.backup.masterKeyBase64 === undefined
      ? undefined
      : parseMasterKey(config.backup.masterKeyBase64, 'BACKUP_MASTER_KEY');
  const keyStore = createKeyStore(config.backup, oldKey);

  if (command === 'status') {
    const { store, directory, s3 } = config.backup;
    const where = store === 'filesystem' ? { directory } : { bucket: s3.bucket, prefix: s3.prefix };
    const organizations = [];
    for (const orgId of await keyStore.organizationsWithKeys())
      organizations.push({ orgId, ...(await keyStore.describe(orgId)) });
    process.stdout.write(
      `${JSON.stringify({ ...where, configuredMasterKeyId: keyStore.masterKeyId ?? null, organizations }, null, 2)}\n`,
    );
    return;
  }

  if (command === 'rotate') {
    if (!oldKey) throw new Error('BACKUP_MASTER_KEY (the current master key) must be set to rotate it');
    const file = values['new-key-file'];
    const newKeyText = file !== undefined ? await readFile(file, 'utf8') : process.env.NEW_BACKUP_MASTER_KEY;
    if (newKeyText === undefined || newKeyText.trim() === '')
      throw new Error(`the new master key is missing: pass --new-key-file FILE or set NEW_BACKUP_MASTER_KEY\n${USAGE}`);
    const newKey = parseMasterKey(newKeyText, file !== undefined ? `--new-key-file ${file}` : 'NEW_BACKUP_MASTER_KEY');
    if (masterKeyId(newKey) === masterKeyId(oldKey))
      throw new Error('the new master key is the current one; nothing to rotate');
    const report = await keyStore.rotateMasterKey(oldKey, newKey);
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(
      `Every data key is now wrapped under ${report.toMasterKeyId}. Set BACKUP_MASTER_KEY to the new key and restart the workers.\n`,
    );
    return;
  }

  throw new Error(`unknown command ${JSON.stringify(command)}\n${USAGE}`);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`keys: ${messageOf(err)}\n`);
  process.exitCode = 1;
});
