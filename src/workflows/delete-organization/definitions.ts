// The deletion's public surface besides its input and result: query, signals, failure type.
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { CancelDeletionSignal, DeletionStatus, OperatorDecisionSignal } from '../../contracts/deletion';

export const deletionStatusQuery = defineQuery<DeletionStatus>('deletionStatus');
export const cancelDeletionSignal = defineSignal<[CancelDeletionSignal]>('cancelDeletion');
export const retryNowSignal = defineSignal<[OperatorDecisionSignal]>('retryNow');
export const abandonSignal = defineSignal<[OperatorDecisionSignal]>('abandon');

/** Failure type of a deletion an operator abandoned after the point of no return. */
export const DELETION_ABANDONED = 'DeletionAbandoned';
