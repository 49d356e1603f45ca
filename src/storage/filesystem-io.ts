import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';
import * as path from 'node:path';
import type { ApplicationFailure } from '@temporalio/common';
import { asError, errorCodes, FailureType, messageOf, permanentFailure, type FailureContext } from '../errors';

/** Codes that no retry fixes without an operator: the disk or quota is full. */
const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);
/** Codes that no retry fixes: permissions or a read-only filesystem. */
const REJECTED_CODES = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * Turns a filesystem error into the failure the architecture asks for: `DiskFull` (ENOSPC, EDQUOT) and
 * `StoreRejected` (EACCES, EPERM, EROFS) are non-retryable and name the file; anything else (EIO, EMFILE,
 * a vanished NFS server) is returned unchanged so the activity retries it.
 */
export function classifyFilesystemError(err: unknown, context: FailureContext): Error | ApplicationFailure {
  const codes = errorCodes(err);
  if (codes.some((code) => DISK_FULL_CODES.has(code))) {
    return permanentFailure(
      FailureType.DiskFull,
      `no space left on the backup device while writing: ${messageOf(err)}`,
      context,
      err,
    );
  }
  if (codes.some((code) => REJECTED_CODES.has(code))) {
    return permanentFailure(
      FailureType.StoreRejected,
      `the backup directory refused access: ${messageOf(err)}`,
      context,
      err,
    );
  }
  return asError(err);
}

/**
 * Makes a rename or unlink in `directory` durable. Filesystems that cannot fsync a directory
 * (EINVAL, EISDIR on some platforms) are accepted: they order metadata themselves or not at all.
 */
export async function fsyncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } catch (err: unknown) {
    if (!errorCodes(err).some((code) => code === 'EINVAL' || code === 'EISDIR' || code === 'EBADF')) throw err;
  } finally {
    await handle.close();
  }
}

/** `.<name>.tmp-<random>` beside `file`: hidden, unique per attempt, on the same filesystem so rename is atomic. */
export function temporaryPathFor(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${randomBytes(6).toString('hex')}`);
}

/** True for names made by {@link temporaryPathFor}. */
export function isTemporaryName(name: string): boolean {
  return /^\..+\.tmp-[0-9a-f]{12}$/.test(name);
}

/**
 * Writes `content` to `file` atomically and durably: temporary file, fsync, rename, fsync of the folder.
 * Readers see the old content or the new one; a crash leaves at most a temporary file.
 * @throws ApplicationFailure `DiskFull` / `StoreRejected` naming `context.object`; other errors unchanged (retryable).
 */
export async function writeFileAtomically(
  file: string,
  content: string | Buffer,
  context: FailureContext,
): Promise<void> {
  const temporary = temporaryPathFor(file);
  try {
    const handle = await open(temporary, 'wx', 0o600);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
    await fsyncDirectory(path.dirname(file));
  } catch (err: unknown) {
    await unlink(temporary).catch(() => undefined);
    throw classifyFilesystemError(err, context);
  }
}
