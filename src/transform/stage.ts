import { randomUUID } from 'node:crypto';
import { backoff } from '../backoff.js';
import { clockSleep, type Clock, type TimerHandle } from '../clock.js';
import type { Failure } from '../failure.js';
import type { SourceEventFields } from '../source.js';
import type { ByteBudget } from '../budget.js';
import type { Logger } from '../log.js';
import type { SourceRecord } from '../records.js';
import type { TransformSettings } from './config.js';
import { RESULT_DROPPED, RESULT_OK, type TransformPool, type Invocation, type InvocationOutcome } from './pool.js';
import { MiB } from '../units.js';
import { DurationHistogram } from '../metrics/histogram.js';

/** Lambda's synchronous payload limit; an invocation is split to stay under it (base64 grows data by 4/3). */
const MAX_PAYLOAD_BYTES = 6 * MiB;
const PER_RECORD_OVERHEAD = 400;

export interface TransformOutputs {
  /** The record with the handler's data, and the partition keys it returned, if any. */
  transformed(record: SourceRecord, partitionKeys: Readonly<Record<string, string>> | undefined): void;
  dropped(records: readonly SourceRecord[]): void;
  failed(record: SourceRecord, failure: Failure): void;
}

/** What a transform's event says of where it runs and what it reads. */
export interface TransformIdentity {
  readonly deliveryStreamArn: string;
  readonly region: string;
  readonly source: SourceEventFields;
}

export interface TransformStats {
  invocations: number;
  failedInvocations: number;
  recordsTransformed: number;
  recordsDropped: number;
  recordsFailed: number;
  /** ExecuteProcessing.Duration: each invocation, retries included, failed or not. */
  readonly durations: DurationHistogram;
}

/**
 * Firehose's data transformation: records are buffered (bufferSizeInMBs / bufferIntervalInSeconds),
 * handed to the handler in invocations of at most 6 MB, retried numberOfRetries times when the
 * invocation fails (throws, times out, breaks the contract, kills its thread), and then each
 * record goes on transformed, is dropped, or fails to the error output.
 */
export class TransformStage {
  readonly stats: TransformStats = { invocations: 0, failedInvocations: 0, recordsTransformed: 0, recordsDropped: 0, recordsFailed: 0, durations: new DurationHistogram() };
  private pendingRecords: SourceRecord[] = [];
  private pendingBytes = 0;
  private timer: TimerHandle | undefined;
  private readonly inflight = new Set<Promise<void>>();
  /** Ordered: the previous invocation's records have been handed on. */
  private handedOn: Promise<void> = Promise.resolve();

  constructor(
    private readonly processor: TransformSettings,
    private readonly pool: TransformPool,
    private readonly identity: TransformIdentity,
    private readonly clock: Clock,
    private readonly outputs: TransformOutputs,
    private readonly log: Logger,
    /** Transform output counts against it in place of its input. */
    private readonly budget?: ByteBudget,
    /**
     * Hand records on in the order they came, whichever invocation finishes first (exactly-once:
     * a shard's batch must be re-formed from the same records in the same order). Invocations still
     * run at once; only their results wait their turn.
     */
    private readonly ordered = false,
  ) {}

  /** Records waiting for an invocation. */
  get pending(): number {
    return this.pendingRecords.length;
  }

  /** Bytes of the records waiting for an invocation. */
  get pendingSize(): number {
    return this.pendingBytes;
  }

  accept(record: SourceRecord): void {
    if (this.pendingRecords.length === 0) this.timer = this.clock.setTimeout(() => this.flush(), this.processor.bufferIntervalMs);
    this.pendingRecords.push(record);
    this.pendingBytes += record.data.length;
    if (this.pendingBytes >= this.processor.bufferSizeBytes) this.flush();
  }

  /** Invokes the handler on what is buffered. */
  flush(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pendingRecords.length === 0) return;
    const records = this.pendingRecords;
    this.pendingRecords = [];
    this.pendingBytes = 0;
    for (const part of splitByPayload(records)) {
      const invoked = this.invoke(part);
      const run = (this.ordered ? (this.handedOn = this.handedOn.catch(() => undefined).then(async () => this.handOn(part, await invoked))) : invoked.then((result) => this.handOn(part, result)))
        .catch((err: unknown) => this.log.error('a transform invocation failed unexpectedly; its records will be read again after a restart', { error: err }))
        .finally(() => this.inflight.delete(run));
      this.inflight.add(run);
    }
  }

  /** Resolves once every invocation under way has handed its records on. */
  async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.all(this.inflight);
  }

  /** The handler's answer for these records, retried as Firehose retries a failed invocation. */
  private async invoke(records: SourceRecord[]): Promise<{ outcome: InvocationOutcome; attempts: number }> {
    let outcome: InvocationOutcome;
    let attempts = 0;
    for (;;) {
      attempts++;
      this.stats.invocations++;
      const started = performance.now();
      outcome = await this.pool.invoke(this.invocation(records), this.processor.timeoutMs);
      this.stats.durations.observe((performance.now() - started) / 1000);
      if (outcome.ok) break;
      this.stats.failedInvocations++;
      if (attempts > this.processor.numberOfRetries) break;
      const delayMs = backoff(attempts, 100, 5_000);
      this.log.warn('transform invocation failed; retrying', { errorCode: outcome.errorCode, error: outcome.errorMessage, attempt: attempts, delayMs });
      await clockSleep(this.clock, delayMs);
    }
    return { outcome, attempts };
  }

  /** Each record goes on transformed, dropped, or failed to the error output. */
  private handOn(records: SourceRecord[], { outcome, attempts }: { outcome: InvocationOutcome; attempts: number }): void {
    const ended = this.clock.now();
    if (!outcome.ok) {
      this.log.warn('transform invocation failed for good; its records go to the error output', { errorCode: outcome.errorCode, records: records.length, attempts });
      const failure: Failure = {
        errorOutputType: 'processing-failed',
        code: outcome.errorCode,
        message: outcome.errorMessage,
        attemptsMade: attempts,
        endedAt: ended,
        lambdaArn: this.processor.module,
      };
      for (const record of records) this.outputs.failed(record, failure);
      this.stats.recordsFailed += records.length;
      return;
    }
    const dropped: SourceRecord[] = [];
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      const result = outcome.results[i];
      if (result === RESULT_OK) {
        const out = outcome.data[i]!;
        this.budget?.resize(record.data.length, out.byteLength);
        this.stats.recordsTransformed++;
        this.outputs.transformed(
          { ...record, data: Buffer.from(out.buffer, out.byteOffset, out.byteLength) },
          outcome.partitionKeys[i] ?? undefined,
        );
      } else if (result === RESULT_DROPPED) {
        dropped.push(record);
      } else {
        this.stats.recordsFailed++;
        this.outputs.failed(record, {
          errorOutputType: 'processing-failed',
          code: 'Lambda.ProcessingFailed',
          message: 'the handler returned result ProcessingFailed for this record',
          attemptsMade: attempts,
          endedAt: ended,
          lambdaArn: this.processor.module,
        });
      }
    }
    if (dropped.length > 0) {
      this.stats.recordsDropped += dropped.length;
      this.outputs.dropped(dropped);
    }
  }

  private invocation(records: readonly SourceRecord[]): Invocation {
    return buildInvocation(records, this.identity);
  }
}

type InvocationInput = Pick<SourceRecord, 'data' | 'approximateArrivalTimestamp' | 'shardId' | 'partitionKey' | 'sequenceNumber' | 'subSequenceNumber'>;

/** The Firehose event for these records; their bytes share one buffer, moved (not copied) to the handler's thread. */
export function buildInvocation(records: readonly InvocationInput[], identity: TransformIdentity): Invocation {
  let total = 0;
  for (const r of records) total += r.data.length;
  const payload = new Uint8Array(total);
  let at = 0;
  return {
    invocationId: randomUUID(),
    deliveryStreamArn: identity.deliveryStreamArn,
    region: identity.region,
    sourceFields: identity.source.event,
    ...(identity.source.recordMetadataKey ? { recordMetadataKey: identity.source.recordMetadataKey } : {}),
    records: records.map((r, i) => {
      payload.set(r.data, at);
      const data = payload.subarray(at, at + r.data.length);
      at += r.data.length;
      return {
        recordId: String(i),
        approximateArrivalTimestamp: r.approximateArrivalTimestamp,
        data,
        metadata: {
          shardId: r.shardId,
          partitionKey: r.partitionKey,
          approximateArrivalTimestamp: r.approximateArrivalTimestamp,
          sequenceNumber: r.sequenceNumber,
          subsequenceNumber: String(r.subSequenceNumber),
        },
      };
    }),
  };
}

function splitByPayload(records: SourceRecord[]): SourceRecord[][] {
  const parts: SourceRecord[][] = [];
  let current: SourceRecord[] = [];
  let size = 0;
  for (const record of records) {
    const encoded = Math.ceil(record.data.length / 3) * 4 + PER_RECORD_OVERHEAD;
    if (current.length > 0 && size + encoded > MAX_PAYLOAD_BYTES) {
      parts.push(current);
      current = [];
      size = 0;
    }
    current.push(record);
    size += encoded;
  }
  if (current.length > 0) parts.push(current);
  return parts;
}
