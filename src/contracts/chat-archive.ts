/** The stream whose messages are chat (the runbook's 10-day `CHAT` stream). */
export const CHAT_STREAM = 'CHAT';

/** Default age a chat message must reach before it is archived: 9 days, one day before the stream's 10-day expiry. */
export const DEFAULT_ARCHIVE_AGE_MS = 9 * 24 * 60 * 60 * 1000;

/** Input of `archiveChat`, as typed into the Temporal UI or sent by a schedule. */
export interface ArchiveChatInput {
  /** One organization; every organization (one child workflow each) when absent. */
  orgId?: string;
  /** Only messages at least this old are archived, in milliseconds. @default 9 days */
  olderThanMs?: number;
  /** Messages per ClickHouse insert. @default 500 */
  batchSize?: number;
  /** Organizations archived at once when fanning out. @default 4 */
  concurrency?: number;
  /** When fanning out, only these organizations (sorted, de-duplicated); every organization in PostgreSQL when absent. */
  orgIds?: string[];
  /** Organizations per run when fanning out, before it continues as new (keeps its history small). @default 100 */
  pageSize?: number;
  /** Carried across continue-as-new; not for callers. */
  progress?: ArchiveChatFanOutSummary;
}

/** What a fan-out has done so far: counts and the last failures, the same size for any number of organizations. */
export interface ArchiveChatFanOutSummary extends ChatArchiveCounts {
  /** Organizations after this id are still to do. */
  afterId: string;
  /** Organizations archived (including those skipped because they are being deleted). */
  organizations: number;
  /** Organizations skipped because they are past their deletion's point of no return. */
  skipped: number;
  failedCount: number;
  /** The last 20 failures, oldest first. */
  failed: Array<{ orgId: string; error: string }>;
}

/** Progress and result of one organization's archival; also the activity's heartbeat details. */
export interface ChatArchiveCounts {
  /** Messages read from the stream in this run (including ones found already archived). */
  read: number;
  /** Rows written to the archive table by this run. */
  archived: number;
  /** Rows written to the dead-letter table by this run. */
  deadLettered: number;
  /** Messages skipped because an earlier attempt had already written them. */
  alreadyArchived: number;
}

/** What `archiveChat` returns for one organization. */
export interface ArchiveChatResult extends ChatArchiveCounts {
  orgId: string;
  stream: string;
  /** Messages published before this instant (ISO-8601) were eligible. */
  cutoff: string;
  /** Highest stream sequence in the archive per subject (the subject after `chat.<org>.`). */
  highestSequenceBySubject: Record<string, number>;
  /** Highest stream sequence of the organization written to either table (archive or dead letter); 0 when none. */
  lastSequence: number;
  /** Why the archival stopped before the end: the organization is past its deletion's point of no return. */
  skipped?: string;
}

/**
 * What `archiveChat` returns when it fans out over every organization: totals, not one entry per
 * organization, so the result and the history stay small with thousands of them.
 */
export type ArchiveChatPlatformResult = Omit<ArchiveChatFanOutSummary, 'afterId'>;
