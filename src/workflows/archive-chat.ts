import {
  ApplicationFailure,
  continueAsNew,
  defineQuery,
  executeChild,
  patched,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { createChatArchiveActivities } from '../activities/cross-store/chat-archive';
import {
  DEFAULT_ARCHIVE_AGE_MS,
  type ArchiveChatFanOutSummary,
  type ArchiveChatInput,
  type ArchiveChatPlatformResult,
  type ArchiveChatResult,
} from '../contracts/chat-archive';
import { FailureType } from '../errors';
import { parseOrgId } from '../platform/org-id';
import { OperationAttribute, OrgIdAttribute } from '../search-attributes';
import { ACTIVITY_KINDS, activityProxies } from './shared/activity-proxies';
import { DEFAULT_FAN_OUT_PAGE_SIZE, FAILURES_KEPT, forEachConcurrently, keepLastFailures } from './shared/fan-out';
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

/** Marks the runs whose fan-out continues as new after each page. */
export const ARCHIVE_CHAT_PAGES_PATCH = 'archive-chat-continues-as-new-per-page';

/** `orgIds` of the input: valid ids, sorted and de-duplicated, so pages follow one order. */
function listedOrganizations(value: unknown): string[] {
  if (!Array.isArray(value)) {
    throw ApplicationFailure.nonRetryable(
      `orgIds: expected a list of organization ids, got ${JSON.stringify(value)}`,
      FailureType.InvalidInput,
    );
  }
  return [...new Set(value.map((id, i) => parseOrgId(id, `orgIds[${i}]`)))].sort();
}

/** A child run with an `orgId` returns one organization's result. */
function isOrganizationResult(value: ArchiveChatResult | ArchiveChatPlatformResult): value is ArchiveChatResult {
  return 'stream' in value;
}

/**
 * Archives chat messages older than `olderThanMs` (default 9 days, a day before the CHAT stream's
 * 10-day expiry) into each organization's ClickHouse chat archive, each message exactly once.
 * With `orgId`, one organization; without, a child `archiveChat` per organization listed in
 * PostgreSQL (or in `orgIds`), `concurrency` at a time, where one organization's failure never
 * stops the others. The fan-out continues as new every `pageSize` organizations and returns totals
 * and the last failures, so its history and result stay small with thousands of organizations.
 * An organization past its deletion's point of no return is skipped (the listing leaves it out; an
 * archival already running stops before its next batch).
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

  const pageSize = wholeNumber(input.pageSize, DEFAULT_FAN_OUT_PAGE_SIZE, 'pageSize', 1);
  const orgIds = input.orgIds === undefined ? undefined : listedOrganizations(input.orgIds);
  const summary: ArchiveChatFanOutSummary = input.progress
    ? { ...input.progress, failed: input.progress.failed.slice(-FAILURES_KEPT) }
    : {
        afterId: '',
        organizations: 0,
        skipped: 0,
        failedCount: 0,
        failed: [],
        read: 0,
        archived: 0,
        deadLettered: 0,
        alreadyArchived: 0,
      };
  progress.organizationsDone = summary.organizations;
  progress.organizationsFailed = summary.failedCount;
  const parentId = workflowInfo().workflowId;
  for (;;) {
    moveTo('listing');
    const afterId = summary.afterId;
    const page = orgIds
      ? orgIds.filter((id) => id > afterId).slice(0, pageSize)
      : await listing.listOrganizationsPage({ afterId, limit: pageSize });
    moveTo('archiving');
    await forEachConcurrently(page, concurrency, async (id) => {
      try {
        const result = await executeChild(archiveChat, {
          workflowId: `${parentId}-${id}`,
          args: [{ orgId: id, olderThanMs, batchSize }],
        });
        if (isOrganizationResult(result)) {
          summary.read += result.read;
          summary.archived += result.archived;
          summary.deadLettered += result.deadLettered;
          summary.alreadyArchived += result.alreadyArchived;
          if (result.skipped !== undefined) summary.skipped++;
        }
        summary.organizations++;
        progress.organizationsDone++;
      } catch (err) {
        summary.failedCount++;
        keepLastFailures(summary.failed, { orgId: id, error: rootMessage(err) });
        progress.organizationsFailed++;
      }
    });
    const last = page[page.length - 1];
    if (page.length < pageSize || last === undefined) break;
    summary.afterId = last;
    // Every page in a run of its own: its history holds one page of children, never all of them.
    // (Runs started before this loop kept every page in one history; they replay without it.)
    if (patched(ARCHIVE_CHAT_PAGES_PATCH)) {
      await continueAsNew<typeof archiveChat>({ ...input, progress: summary });
    }
  }
  moveTo('done');
  const { afterId: _done, ...totals } = summary;
  return totals;
}
