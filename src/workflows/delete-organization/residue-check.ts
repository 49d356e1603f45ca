// After the purge, the organization is looked for again in every store; what something wrote after
// its store was purged (a late message, a cache fill) is purged again, until nothing is left.
import type { PurgeStep } from '../../contracts/deletion';
import { PURGE_STEPS } from '../../contracts/deletion';
import { park, untilSucceeded } from './parking';
import { purgeStep } from './purge';
import type { PurgingRun } from './state';

/** Residue found after this many re-purges parks the run: something keeps writing the organization's data. */
export const MAX_RESIDUE_ROUNDS = 3;

/** Re-purges the stores that still hold something until none does; records the check in the certificate. */
export async function checkResidue(run: PurgingRun): Promise<void> {
  const { orgId } = run.input;
  run.moveTo('residue-check');
  const describe = () => untilSucceeded(run, 'residue-check', () => run.untilDone.describeForDeletion(orgId));
  let check = await describe();
  const found = [...check.lines];
  const purgedAgain = new Set<PurgeStep>();
  for (let round = 1; check.exists; round++) {
    if (round > MAX_RESIDUE_ROUNDS) {
      await park(
        run,
        'residue-check',
        `residue remains after ${MAX_RESIDUE_ROUNDS} re-purges: ${check.lines.join('; ')}`,
      );
      round = 1;
    }
    for (const step of PURGE_STEPS.filter((s) => check.steps.includes(s))) {
      purgedAgain.add(step);
      await purgeStep(run, step);
    }
    check = await describe();
  }
  run.certificate.residueCheck = {
    clean: true,
    checkedAt: new Date().toISOString(),
    found,
    purgedAgain: [...purgedAgain],
  };
  if (found.length > 0) run.status.notes.push(`residue found and purged again: ${found.join('; ')}`);
}
