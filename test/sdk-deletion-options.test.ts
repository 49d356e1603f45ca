import { randomUUID } from 'node:crypto';
import { defaultPayloadConverter } from '@temporalio/common';
import { connectRecoveryClient, InvalidRequestError, type RecoveryClient } from '../src/client';
import { loadConfig } from '../src/config';
import type { DeleteOrganizationInput } from '../src/contracts/deletion';
import { terminateIfRunning } from './support/deletion';
import { rejectionOf } from './support/failures';
import { uniqueOrgId } from './support/test-worker';

/**
 * What `RecoveryClient.startDeletion` sends is what the caller asked for. No worker polls the task
 * queue, so nothing is deleted: the test reads the input the run was started with from its history.
 */
describe('RecoveryClient.startDeletion', () => {
  let sdk: RecoveryClient;
  const workflows: string[] = [];

  beforeAll(async () => {
    sdk = await connectRecoveryClient({ config: loadConfig(), taskQueue: `test-unpolled-${randomUUID().slice(0, 8)}` });
  });
  afterAll(async () => {
    if (sdk) {
      for (const id of workflows) await terminateIfRunning(sdk.temporal, id);
      await sdk.close();
    }
  });

  it('passes backupRetention, storeDownAfter and parkedRetryInterval on to the workflow', async () => {
    const orgId = uniqueOrgId('sdkdl');
    const started = await sdk.startDeletion({
      orgId,
      confirmOrgId: orgId,
      requestedBy: 'jest',
      reason: 'sdk options test',
      gracePeriod: '7d',
      backupRetention: '90d',
      storeDownAfter: '2h',
      parkedRetryInterval: '10m',
    });
    workflows.push(started.workflowId);
    const history = await sdk.temporal.workflow.getHandle(started.workflowId).fetchHistory();
    const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
    if (!payload) throw new Error('the deletion was started without an input');
    expect(defaultPayloadConverter.fromPayload<DeleteOrganizationInput>(payload)).toMatchObject({
      orgId,
      gracePeriod: '7d',
      backupRetention: '90d',
      storeDownAfter: '2h',
      parkedRetryInterval: '10m',
    });
  });

  it('refuses a malformed retention, store-down or parked-retry duration before starting anything, naming the field', async () => {
    const orgId = uniqueOrgId('sdkdb');
    const base = { orgId, confirmOrgId: orgId, requestedBy: 'jest', reason: 'sdk options test', gracePeriod: '0s' };
    // Should one be started after all, it is ended (its queue has no worker, so it never ran).
    workflows.push(`delete-org-${orgId}`);
    for (const field of ['backupRetention', 'storeDownAfter', 'parkedRetryInterval'] as const) {
      const refusal = await rejectionOf(sdk.startDeletion({ ...base, [field]: 'soon' }));
      expect(refusal).toBeInstanceOf(InvalidRequestError);
      expect(refusal).toMatchObject({ field, message: expect.stringMatching(new RegExp(`^${field}: `)) });
    }
    await expect(sdk.temporal.workflow.getHandle(`delete-org-${orgId}`).describe()).rejects.toThrow(/not found/i);
  });
});
