/**
 * Seeds (or drops) organizations with deterministic data in every store of the local stack.
 *
 *   npm run seed -- --orgs 3 --scale small|medium|large [--seed S] [--prefix P] [--org-ids a,b] [--drop]
 *
 * Org ids are `<prefix><n>` (default prefix `demo_`, n = 1..orgs) unless --org-ids lists them.
 * The same seed gives the same content every time (re-seeding replaces the org's data); --drop
 * removes what seeding made for those orgs. Connection settings come from the usual environment.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config';
import { messageOf } from '../src/errors';
import { parseOrgId } from '../src/platform/org-id';
import { loadPlatformModel } from '../src/platform/data-map';
import { dropSeededOrganization, seedOrganization, type SeedScale } from '../src/platform/seed-organization';
import { closeStoreClients, createStoreClients } from '../src/store-clients';

const USAGE =
  'usage: npm run seed -- --orgs N --scale small|medium|large [--seed S] [--prefix P] [--org-ids a,b] [--drop]';

function isScale(value: string): value is SeedScale {
  return value === 'small' || value === 'medium' || value === 'large';
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      orgs: { type: 'string', default: '1' },
      scale: { type: 'string', default: 'small' },
      seed: { type: 'string', default: '1' },
      prefix: { type: 'string', default: 'demo_' },
      'org-ids': { type: 'string' },
      drop: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const scale = values.scale;
  if (!isScale(scale))
    throw new Error(`--scale: expected small, medium or large, got ${JSON.stringify(scale)}\n${USAGE}`);
  const count = Number(values.orgs);
  if (!Number.isInteger(count) || count < 1)
    throw new Error(`--orgs: expected a positive whole number, got ${JSON.stringify(values.orgs)}\n${USAGE}`);
  const orgIds = (
    values['org-ids'] !== undefined
      ? values['org-ids'].split(',').map((s) => s.trim())
      : Array.from({ length: count }, (_, i) => `${values.prefix}${i + 1}`)
  ).map((id) => parseOrgId(id, values['org-ids'] !== undefined ? '--org-ids' : '--prefix'));
  const model = await loadPlatformModel(process.env.PLATFORM_MODEL_FILE);
  const clients = createStoreClients(loadConfig());
  const started = performance.now();
  try {
    for (const orgId of orgIds) {
      const orgStarted = performance.now();
      if (values.drop) {
        await dropSeededOrganization(clients, orgId, model);
        process.stdout.write(`dropped ${orgId} in ${Math.round(performance.now() - orgStarted)} ms\n`);
      } else {
        const report = await seedOrganization(clients, orgId, { scale, seed: values.seed, model });
        const d = report.durationsMs;
        process.stdout.write(
          `seeded ${orgId} (${scale}, seed ${report.seed}) in ${Math.round(performance.now() - orgStarted)} ms ` +
            `[postgres ${d.postgres} ms, clickhouse ${d.clickhouse} ms, queue ${d.queue} ms, redis ${d.redis} ms]\n`,
        );
      }
    }
    process.stdout.write(
      `${values.drop ? 'dropped' : 'seeded'} ${orgIds.length} organization${orgIds.length === 1 ? '' : 's'} in ${Math.round(performance.now() - started)} ms\n`,
    );
  } finally {
    await closeStoreClients(clients);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`seed failed: ${messageOf(err)}\n`);
  process.exit(1);
});
