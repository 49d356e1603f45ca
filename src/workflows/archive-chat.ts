import {
  ApplicationFailure,
  defineQuery,
  executeChild,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createChatArchiveActivities } from '../activities/cross-store/chat-archive';
import {
  DEFAULT_ARCHIVE_AGE_MS,
  type ArchiveChatInput,
  type ArchiveChatPlatformResult,
  type ArchiveChatResult,
} from '../contracts/chat-archive';
import { FailureType } from '../errors';
import { parseOrgId } from '../platform/org-id';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import { rootMessage } from './shared/failures';
import { trackProgress } from './shared/progress';

/** What `archiveChat` answers to the `archiveChatProgress` query. */
export interface ArchiveChatProgress {
  /** The organization, or `*` when fanning out. */
  orgId: string;
  step: 'listing' | 'archiving' | 'done' | 'failed';
  /** Organizations finished so far (fan-out only). */
  organizationsDone: number;
  organizationsFailed: number;
}

export const archiveChatProgressQuery = defineQuery<ArchiveChatProgress>('archiveChatProgress');

type ChatArchiveActivities = ReturnType<typeof createChatArchiveActivities>;

// The archival heartbeats after every batch; a killed worker is noticed within 15 s and the retry
// resumes after the last sequence ClickHouse holds.
const archiving = activityProxies<ChatArchiveActivities>(ACTIVITY_KINDS.archiving);
const listing = activityProxies(ACTIVITY_KINDS.listing);

function wholeNumber(value: unknown, fallback: number, field: string, min: number): number {
  const n = value ?? fallback;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min) {
    throw ApplicationFailure.nonRetryable(
      `${field}: expected a whole number >= ${min}, got ${JSON.stringify(value)}`,
      FailureType.InvalidInput,
    );
  }
  return n;
}

/** A child run with an `orgId` returns one organization's result. */
function isOrganizationResult(value: ArchiveChatResult | ArchiveChatPlatformResult): value is ArchiveChatResult {
  return 'stream' in value;
}

/**
 * Archives chat messages older than `olderThanMs` (default 9 days, a day before the CHAT stream's
 * 10-day expiry) into each organization's ClickHouse chat archive, each message exactly once.
 * With `orgId`, one organization; without, a child `archiveChat` per organization listed in
 * PostgreSQL, `concurrency` at a time, where one organization's failure never stops the others.
 */
export async function archiveChat(
  input: ArchiveChatInput = {},
): Promise<ArchiveChatResult | ArchiveChatPlatformResult> {
  if (input === null || typeof input !== 'object') {
    throw ApplicationFailure.nonRetryable(
      'input: expected an object such as {"orgId": "acme"} or {}',
      FailureType.InvalidInput,
    );
  }
  const olderThanMs = wholeNumber(input.olderThanMs, DEFAULT_ARCHIVE_AGE_MS, 'olderThanMs', 0);
  const batchSize = wholeNumber(input.batchSize, 500, 'batchSize', 1);
  const concurrency = wholeNumber(input.concurrency, 4, 'concurrency', 1);
  const orgId = input.orgId === undefined ? undefined : parseOrgId(input.orgId, 'orgId');
  upsertSearchAttributes([
    { key: OperationAttribute, value: 'archive-chat' },
    ...(orgId !== undefined ? [{ key: OrgIdAttribute, value: orgId }] : []),
  ]);
  const progress: ArchiveChatProgress = {
    orgId: orgId ?? '*',
    step: orgId ? 'archiving' : 'listing',
    organizationsDone: 0,
    organizationsFailed: 0,
  };
  setHandler(archiveChatProgressQuery, () => progress);
  const moveTo = trackProgress(progress, `chat archive of ${orgId ? `\`${orgId}\`` : 'every organization'}`);

  if (orgId !== undefined) {
    try {
      const result = await archiving.archiveOrganizationChat({ orgId, olderThanMs, batchSize });
      moveTo('done');
      return result;
    } catch (err) {
      moveTo('failed');
      throw err;
    }
  }

  const organizations: ArchiveChatResult[] = [];
  const failed: ArchiveChatPlatformResult['failed'] = [];
  const parentId = workflowInfo().workflowId;
  let afterId = '';
  for (;;) {
    moveTo('listing');
    const page = await listing.listOrganizationsPage({ afterId, limit: 100 });
    moveTo('archiving');
    const queue = [...page];
    const runner = async (): Promise<void> => {
      for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
        try {
          const result = await executeChild(archiveChat, {
            workflowId: `${parentId}-${id}`,
            args: [{ orgId: id, olderThanMs, batchSize }],
          });
          if (isOrganizationResult(result)) organizations.push(result);
          progress.organizationsDone++;
        } catch (err) {
          failed.push({ orgId: id, error: rootMessage(err) });
          progress.organizationsFailed++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, page.length) }, runner));
    const last = page[page.length - 1];
    if (page.length < 100 || last === undefined) break;
    afterId = last;
  }
  moveTo('done');
  return { organizations, failed };
}
