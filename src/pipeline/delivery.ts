import { backoff } from '../backoff.js';
import { clockSleep, type Clock } from '../clock.js';
import { DeliveryError, type DeliveryReceipt, type Destination, type EncodedBatch } from '../destination.js';
import type { FailureReason } from '../failure.js';
import type { Logger } from '../log.js';

export interface RetryPolicy {
  /** How long a batch is retried; undefined: until delivered (the error output, where records end when all else failed). */
  readonly durationMs: number | undefined;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DELIVERY_BACKOFF = { baseDelayMs: 1_000, maxDelayMs: 120_000 } as const;

/** A record of the batch that will not be delivered: its index in the batch and why. */
export interface FinalFailure {
  readonly index: number;
  readonly reason: FailureReason;
  /** Attempts made for this record. */
  readonly attempts: number;
}

export type DeliveryOutcome =
  /** Given up at shutdown: the records reached no end, their positions stay held. */
  | { readonly ended: false }
  /** Every record is delivered except `failures`, which will not be. */
  | { readonly ended: true; readonly receipt: DeliveryReceipt | undefined; readonly attempts: number; readonly failures: readonly FinalFailure[] };

export interface DeliveryContext {
  readonly clock: Clock;
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly onAttemptFailed: () => void;
}

/**
 * Delivers one batch, retrying what failed and may succeed later, with exponential backoff on the
 * injected clock. A record-oriented batch can fail record by record: only what is still pending is
 * retried. A permanent error, or running out of the retry duration, ends the pending records as
 * final failures; an object batch (its records cannot be split out) is retried until delivered.
 */
export async function deliverWithRetries(target: Destination, batch: EncodedBatch, policy: RetryPolicy, context: DeliveryContext): Promise<DeliveryOutcome> {
  const { clock, signal, log } = context;
  const deadline = policy.durationMs === undefined ? Infinity : clock.now() + policy.durationMs;
  const splittable = batch.recordData !== undefined && policy.durationMs !== undefined;
  let pending: number[] | undefined = batch.recordData?.map((_, i) => i);
  let attemptBatch = batch;
  const failures: FinalFailure[] = [];
  let receipt: DeliveryReceipt | undefined;
  for (let attempt = 1; ; attempt++) {
    let whole: unknown;
    let failed: NonNullable<DeliveryReceipt['failed']> = [];
    try {
      receipt = await target.deliver(attemptBatch, signal);
      failed = receipt.failed ?? [];
    } catch (err) {
      if (signal.aborted) return { ended: false };
      whole = err;
    }
    if (whole === undefined && failed.length === 0) return { ended: true, receipt, attempts: attempt, failures };
    context.onAttemptFailed();
    const delayMs = backoff(attempt, policy.baseDelayMs, policy.maxDelayMs);
    const outOfTime = clock.now() + delayMs > deadline;
    if (whole !== undefined) {
      const permanent = whole instanceof DeliveryError && !whole.retryable;
      if (splittable && pending && (permanent || outOfTime)) {
        const reason = { code: whole instanceof DeliveryError ? whole.code : 'Delivery.Failed', message: (whole as Error)?.message ?? String(whole) };
        for (const index of pending) failures.push({ index, reason, attempts: attempt });
        return { ended: true, receipt: undefined, attempts: attempt, failures };
      }
      const fields = { batch: batch.id, records: attemptBatch.records, attempt, delayMs, error: whole };
      if (permanent) log.error('delivery failed with a permanent error; retrying, as this batch cannot end anywhere else — fix the destination', fields);
      else log.warn('delivery failed; retrying', fields);
    } else {
      // Per-record outcome: map the attempt's indices back to the batch's.
      const map = pending!;
      const retryable: number[] = [];
      for (const f of failed) {
        const index = map[f.index]!;
        if (f.retryable && !outOfTime) retryable.push(index);
        else failures.push({ index, attempts: attempt, reason: { code: f.code, message: f.message, ...(f.details ? { details: f.details } : {}) } });
      }
      pending = retryable;
      if (pending.length === 0) return { ended: true, receipt, attempts: attempt, failures };
      log.warn('some records were not taken; retrying them', { batch: batch.id, retrying: pending.length, attempt, delayMs });
      attemptBatch = subBatch(batch, pending);
    }
    await clockSleep(clock, delayMs, signal);
    if (signal.aborted) return { ended: false };
  }
}

/** The same batch narrowed to some of its records (a retry of what a destination did not take). */
function subBatch(batch: EncodedBatch, indices: readonly number[]): EncodedBatch {
  const recordData = indices.map((i) => batch.recordData![i]!);
  let rawBytes = 0;
  for (const d of recordData) rawBytes += d.length;
  return {
    ...batch,
    records: indices.length,
    rawBytes,
    recordData,
    ...(batch.recordSources ? { recordSources: indices.map((i) => batch.recordSources![i]!) } : {}),
  };
}
