import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

/** Custom search attributes every run carries; `scripts/stack.sh` registers them on the dev server. */
export const OrgIdAttribute = defineSearchAttributeKey('OrgId', SearchAttributeType.KEYWORD);
export const OperationAttribute = defineSearchAttributeKey('Operation', SearchAttributeType.KEYWORD);

export type OperationName =
  'preflight' | 'backup' | 'verify' | 'restore' | 'delete' | 'archive-chat' | 'prune' | 'kubernetes';
