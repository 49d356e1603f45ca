// The purge, store by store, leaves first and the organization row last. Each step is idempotent
// (what is already gone counts as removed) and is retried until done, parking in between.
import { PURGE_STEPS, type DeletionCertificate, type PurgeStep, type RemovedCounts } from '../../contracts/deletion';
import { untilSucceeded } from './parking';
import type { PurgingRun } from './state';

const PURGE: Record<PurgeStep, (run: PurgingRun) => Promise<RemovedCounts>> = {
  queue: (run) => run.untilDone.purgeOrganizationQueue(run.input.orgId),
  redis: (run) => run.untilDone.purgeOrganizationRedis(run.input.orgId),
  clickhouse: (run) => run.untilDone.purgeOrganizationClickHouse(run.input.orgId),
  'postgres-schemas': (run) => run.untilDone.purgeOrganizationSchemas(run.input.orgId),
  'postgres-shared-rows': (run) => run.untilDone.purgeOrganizationSharedRows(run.input.orgId),
};

const STORE_OF: Record<PurgeStep, keyof DeletionCertificate['removed']> = {
  queue: 'queue',
  redis: 'redis',
  clickhouse: 'clickhouse',
  'postgres-schemas': 'postgres',
  'postgres-shared-rows': 'postgres',
};

function addCounts(into: RemovedCounts, counts: RemovedCounts): void {
  for (const [key, n] of Object.entries(counts)) into[key] = (into[key] ?? 0) + n;
}

/** Purges one store (again, when the residue check found something), counting into status and certificate. */
export async function purgeStep(run: PurgingRun, step: PurgeStep): Promise<void> {
  const { certificate } = run;
  const s = run.status.purge[step];
  s.startedAt ??= new Date().toISOString();
  const removed = await untilSucceeded(
    run,
    step,
    () => {
      s.state = 'running';
      s.rounds++;
      return PURGE[step](run);
    },
    (message) => {
      s.state = 'parked';
      s.lastError = message;
    },
  );
  s.state = 'done';
  s.finishedAt = new Date().toISOString();
  s.removed = { ...(s.removed ?? {}) };
  addCounts(s.removed, removed);
  addCounts(certificate.removed[STORE_OF[step]], removed);
  const entry = certificate.steps.find((e) => e.step === step);
  if (entry) {
    entry.finishedAt = s.finishedAt;
    entry.rounds = s.rounds;
    addCounts(entry.removed, removed);
  } else {
    certificate.steps.push({
      step,
      startedAt: s.startedAt,
      finishedAt: s.finishedAt,
      rounds: s.rounds,
      removed: { ...removed },
    });
  }
}

/** Every store in order: queue → Redis → ClickHouse → PostgreSQL schemas → shared rows (organization row last). */
export async function purgeEveryStore(run: PurgingRun): Promise<void> {
  for (const step of PURGE_STEPS) await purgeStep(run, step);
}
