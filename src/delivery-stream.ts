import { setMaxListeners } from 'node:events';
import { backoff } from './backoff.js';
import { Acknowledgements, ShardProgress } from './ack.js';
import { BufferSet, type BufferTags, type FlushReason, type SealedBatch } from './buffer.js';
import type { Checkpointer } from './checkpoints.js';
import { sleep, type Clock } from './clock.js';
import { DeliveryError, type DeliveryReceipt, type Destination, type EncodedBatch, type ItemFailure, type PipelineSettings } from './destination.js';
import { RecordListEncoder } from './encoder.js';
import { errorOutputLine, type Failure } from './error-output.js';
import type { Logger } from './log.js';
import type { RecordSink, Source, SourceRecord } from './records.js';
import { QueryError } from './partitioning/query.js';
import type { HandlerPool } from './transform/pool.js';
import { ParquetEncoder } from './conversion/encoder.js';
import type { ConversionPool } from './conversion/pool.js';
import { DeadLetterQueue, DeadLetterQueueFull } from './dlq.js';
import { TransformStage, type TransformIdentity } from './transform/stage.js';

/** The tags of an unpartitioned buffer: shared, not made per record. */
const NO_TAGS: BufferTags = {};

/** Firehose's limit of active partitions per delivery stream. */
export const MAX_ACTIVE_PARTITIONS = 500;

export interface DeliveredEvent {
  readonly deliveryStreamName: string;
  readonly location: string;
  readonly records: number;
  readonly rawBytes: number;
  readonly encodedBytes: number;
  readonly reason: FlushReason;
  readonly attempts: number;
  readonly errorOutputType?: string;
}

/** Counters named after Firehose's CloudWatch metrics where one exists. */
export interface DeliveryStreamStats {
  /** DataReadFromKinesisStream.Records / .Bytes */
  recordsRead: number;
  bytesRead: number;
  /** DeliveryToS3.Records / .Bytes / .Success (objects) */
  recordsDelivered: number;
  bytesDelivered: number;
  objectsDelivered: number;
  /** Failed delivery attempts (each is retried). */
  deliveryAttemptsFailed: number;
  /** Records written to the error output (processing-failed, partitioning-failed). */
  recordsToErrorOutput: number;
  /** Records a transform dropped on purpose: counted, not delivered. */
  recordsDropped: number;
  /** Times a new partition had to wait for an open one to be sealed early (PartitionCountExceeded). */
  partitionCountExceeded: number;
  /** Records parked in the dead-letter queue after exhausting their retries. */
  recordsToDeadLetterQueue: number;
}

export interface DeliveryStreamOptions {
  readonly name: string;
  readonly source: Source;
  readonly destination: Destination;
  /** Where the error output goes, when not the destination itself (an HTTP endpoint's S3 backup). */
  readonly errorOutput?: Destination;
  readonly pipeline: PipelineSettings;
  /** The running transform module, when processing has one. */
  readonly handlers?: HandlerPool;
  /** Conversion threads, when the destination converts records to Parquet. */
  readonly conversions?: ConversionPool;
  /** Where records that exhaust their retries are parked; without it they go to the error output. */
  readonly deadLetters?: DeadLetterQueue;
  /** The destination's configuration key, recorded in dead letters for redrive. */
  readonly destinationKey?: string;
  /** Park records a transform failed in the DLQ rather than the error output. */
  readonly processingFailuresToDeadLetters?: boolean;
  readonly identity: TransformIdentity;
  readonly maxActivePartitions?: number;
  readonly checkpointer: Checkpointer;
  readonly clock: Clock;
  readonly log: Logger;
  readonly onDelivered?: (event: DeliveredEvent) => void;
}

/**
 * One delivery stream: source → buffer → destination. A batch's positions are released only once
 * the destination has it; until then the records count against the byte budget and the shard's
 * checkpoint stays behind them, so a crash re-reads rather than loses.
 */
export class DeliveryStream implements RecordSink {
  readonly stats: DeliveryStreamStats = {
    recordsRead: 0,
    bytesRead: 0,
    recordsDelivered: 0,
    bytesDelivered: 0,
    objectsDelivered: 0,
    deliveryAttemptsFailed: 0,
    recordsToErrorOutput: 0,
    recordsDropped: 0,
    partitionCountExceeded: 0,
    recordsToDeadLetterQueue: 0,
  };
  readonly transform: TransformStage | undefined;
  private readonly objects: BufferSet;
  private readonly errors: BufferSet;
  private readonly inflight = new Set<Promise<void>>();
  private readonly givingUp = new AbortController();
  private running: Promise<void> | undefined;
  private undelivered = 0;

  constructor(private readonly options: DeliveryStreamOptions) {
    // Every delivery in flight listens on this one signal.
    setMaxListeners(0, this.givingUp.signal);
    const { buffer } = options.pipeline;
    const dispatch = (batch: SealedBatch) => this.dispatch(batch);
    const conversion = options.pipeline.conversion;
    if (conversion && !options.conversions) throw new Error('format conversion is configured but no conversion pool was given');
    const parquet =
      conversion && options.conversions
        ? (acks: Acknowledgements) =>
            new ParquetEncoder(options.conversions!, conversion, acks, (record, message) =>
              this.fail(record, {
                errorOutputType: 'format-conversion-failed',
                errorCode: 'DataFormatConversion.MalformedData',
                errorMessage: message,
                attemptsMade: 1,
                attemptEndingTimestamp: Date.now(),
              }),
            )
        : undefined;
    const encoder = parquet ?? (options.pipeline.recordOriented ? () => new RecordListEncoder() : undefined);
    this.objects = new BufferSet(buffer, options.clock, options.maxActivePartitions ?? MAX_ACTIVE_PARTITIONS, dispatch, () => this.stats.partitionCountExceeded++, encoder);
    // Error output lines end in "\n" themselves.
    this.errors = new BufferSet({ ...buffer, appendNewlineDelimiter: false }, options.clock, 16, dispatch);
    const lambda = options.pipeline.processing?.lambda;
    if (lambda && !options.handlers) throw new Error('a transform is configured but no handler pool was given');
    this.transform =
      lambda && options.handlers
        ? new TransformStage(lambda, options.handlers, options.identity, options.clock, {
            transformed: (record, keys) => this.route(record, keys),
            dropped: (records) => this.drop(records),
            failed: (record, failure) => this.fail(record, failure),
          }, options.log)
        : undefined;
  }

  get name(): string {
    return this.options.name;
  }

  accept(records: readonly SourceRecord[]): void {
    this.stats.recordsRead += records.length;
    for (const record of records) {
      this.stats.bytesRead += record.data.length;
      if (this.transform) this.transform.accept(record);
      else this.route(record, undefined);
    }
  }

  /**
   * Puts a record (as transformed) into its partition's buffer. With dynamic partitioning, a record
   * whose keys cannot be found goes to the error output instead — never lost, never blocking.
   */
  private route(record: SourceRecord, lambdaKeys: Readonly<Record<string, string>> | undefined): void {
    const partitioning = this.options.pipeline.partitioning;
    if (!partitioning) {
      this.objects.append('', NO_TAGS, record);
      return;
    }
    const keys: Record<string, string> = {};
    try {
      const query = this.options.pipeline.processing?.metadataExtraction;
      if (query) {
        const values = query.evaluate(JSON.parse(record.data.toString('utf8')));
        for (const name of partitioning.queryKeys) keys[`partitionKeyFromQuery:${name}`] = values[name]!;
      }
      for (const name of partitioning.lambdaKeys) {
        const value = lambdaKeys?.[name];
        if (value === undefined) throw new QueryError(`the transform returned no metadata.partitionKeys.${name}`);
        keys[`partitionKeyFromLambda:${name}`] = value;
      }
    } catch (err) {
      // Whatever went wrong, this record ends in the error output: a throw here would abandon the
      // rest of its read, whose positions could then never be released.
      this.fail(record, {
        errorOutputType: 'partitioning-failed',
        errorCode: err instanceof SyntaxError ? 'DynamicPartitioning.MetadataExtractionFailed.NotJson' : 'DynamicPartitioning.MetadataExtractionFailed',
        errorMessage: err instanceof SyntaxError ? `the record is not JSON: ${err.message}` : String((err as Error)?.message ?? err),
        attemptsMade: 1,
        attemptEndingTimestamp: Date.now(),
      });
      return;
    }
    this.objects.append(JSON.stringify(keys), { partitionKeys: keys }, record);
  }

  private parkingQueue: Array<{ record: SourceRecord; failure: { code: string; message: string }; attempts: number }> = [];

  /**
   * Failed records gathered during one turn of the event loop are parked together; shutdown waits
   * for them like any delivery. Their positions are released once Redis has them.
   */
  private park(record: SourceRecord, failure: Failure): void {
    if (this.parkingQueue.length === 0) {
      queueMicrotask(() => {
        const batch = this.parkingQueue;
        this.parkingQueue = [];
        const run = (async () => {
          let attempts = 0;
          for (const b of batch) if (b.attempts > attempts) attempts = b.attempts;
          if (await this.toDeadLetterQueue(batch, this.options.deadLetters!, attempts, this.givingUp.signal)) {
            const acks = new Acknowledgements();
            for (const { record: r } of batch) acks.add(r.segment);
            acks.release();
          }
        })()
          .catch((err: unknown) => {
            this.undelivered++;
            this.options.log.error('parking failed records failed unexpectedly; they will be read again after a restart', { error: err });
          })
          .finally(() => this.inflight.delete(run));
        this.inflight.add(run);
      });
    }
    this.parkingQueue.push({ record, failure: { code: failure.errorCode, message: failure.errorMessage }, attempts: failure.attemptsMade });
  }

  /** The record's original bytes go to the error output as a Firehose error line. */
  private fail(record: SourceRecord, failure: Failure): void {
    if (failure.errorOutputType === 'processing-failed' && this.options.deadLetters && this.options.processingFailuresToDeadLetters) {
      this.park(record, failure);
      return;
    }
    this.stats.recordsToErrorOutput++;
    this.errors.append(failure.errorOutputType, { errorOutputType: failure.errorOutputType }, { ...record, data: errorOutputLine(record, failure) });
  }

  /**
   * Parks records the destination would not take; they stay in their batch's acknowledgements,
   * released with it. Retried until Redis has them: while the queue is full or Redis is away, the
   * positions stay held, the byte budget fills and reading pauses. False if given up at shutdown.
   */
  private async toDeadLetterQueue(
    failed: ReadonlyArray<{ record: SourceRecord; failure: { code: string; message: string } }>,
    dlq: DeadLetterQueue,
    attempts: number,
    signal: AbortSignal,
  ): Promise<boolean> {
    const lastAttemptAt = Date.now();
    const letters = failed.map(({ record, failure }) =>
      DeadLetterQueue.letter(record, this.options.name, this.options.destinationKey ?? 'destination', {
        errorCode: failure.code,
        errorMessage: failure.message,
        attemptsMade: attempts,
        lastAttemptAt,
      }),
    );
    for (let attempt = 1; ; attempt++) {
      try {
        await dlq.add(letters);
        break;
      } catch (addErr) {
        if (signal.aborted) {
          this.undelivered++;
          return false;
        }
        const delayMs = backoff(attempt, 1_000, 30_000);
        if (addErr instanceof DeadLetterQueueFull) {
          this.options.log.error('DEAD-LETTER QUEUE FULL: delivery is paused until entries are redriven or purged (firehose dlq)', { error: addErr.message, delayMs });
        } else {
          this.options.log.warn('cannot write to the dead-letter queue; retrying', { error: addErr, delayMs });
        }
        await sleep(delayMs, signal);
      }
    }
    this.stats.recordsToDeadLetterQueue += letters.length;
    return true;
  }

  /**
   * With the DLQ on, failed records are also written to the backup bucket, as Firehose always does.
   * The DLQ entry is their end; these lines are copies, acknowledged on a detached segment that no
   * checkpoint waits for.
   */
  private backupCopies(
    failed: ReadonlyArray<{ record: SourceRecord; failure: { code: string; message: string; details?: Readonly<Record<string, string>> } }>,
    errorOutputType: string,
    attempts: number,
  ): void {
    const copies = new ShardProgress('backup-copies', undefined, { segmentReleased() {}, progressed() {} }).open('0', failed.length, 0);
    const ended = Date.now();
    for (const { record, failure } of failed) {
      const line = errorOutputLine(record, deliveryFailure(failure, errorOutputType, attempts, ended));
      this.errors.append(errorOutputType, { errorOutputType }, { ...record, data: line, segment: copies });
    }
  }

  /** Records the destination would not take move to the error output, each with its last error. */
  private toErrorOutput(
    sealed: SealedBatch,
    failed: ReadonlyArray<{ record: SourceRecord; failure: { code: string; message: string; details?: Readonly<Record<string, string>> } }>,
    errorOutputType: string,
    attempts: number,
  ): void {
    const ended = Date.now();
    for (const { record, failure } of failed) {
      sealed.acks.remove(record.segment);
      this.fail(record, deliveryFailure(failure, errorOutputType, attempts, ended));
    }
  }

  /** Dropped on purpose: the records reached their end here. */
  private drop(records: readonly SourceRecord[]): void {
    this.stats.recordsDropped += records.length;
    const acks = new Acknowledgements();
    for (const record of records) acks.add(record.segment);
    acks.release();
  }

  start(checkpointIntervalMs: number): Promise<void> {
    this.options.checkpointer.start(checkpointIntervalMs);
    this.running = this.options.source.run(this);
    return this.running;
  }

  /**
   * Stops reading, seals the buffer, delivers what is left (giving up after the timeout: those
   * records stay uncheckpointed and are read again at the next start) and writes final checkpoints.
   * Resolves true when everything read was delivered and checkpointed.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    this.options.source.stop();
    await this.running;
    if (this.transform) {
      this.transform.flush();
      await this.transform.drain();
    }
    const timer = setTimeout(() => this.givingUp.abort(), timeoutMs);
    // In rounds: encoding an object can send records on to the error output (conversion failures).
    do {
      this.objects.flushAll('shutdown');
      this.errors.flushAll('shutdown');
      while (this.inflight.size > 0) await Promise.all(this.inflight);
    } while (this.objects.buffered > 0 || this.errors.buffered > 0);
    clearTimeout(timer);
    const checkpointed = await this.options.checkpointer.stop();
    const unreleased = this.options.checkpointer.outstandingSegments;
    if (unreleased > 0) this.options.log.error('stopped with records that reached no end; they will be read again at the next start', { segments: unreleased });
    await this.options.destination.close();
    if (this.undelivered > 0) {
      this.options.log.error('stopped with undelivered batches; their records will be read again at the next start', {
        batches: this.undelivered,
      });
    }
    return checkpointed && this.undelivered === 0 && unreleased === 0;
  }

  private dispatch(batch: SealedBatch): void {
    const delivery = this.deliver(batch)
      .catch((err: unknown) => {
        // A bug, not an input: the batch's positions stay held (read again after a restart); the process lives on.
        this.undelivered++;
        this.options.log.error('delivering a batch failed unexpectedly', { batch: batch.id, error: err });
      })
      .finally(() => this.inflight.delete(delivery));
    this.inflight.add(delivery);
  }

  private async deliver(sealed: SealedBatch): Promise<void> {
    const { log, destination, onDelivered } = this.options;
    const signal = this.givingUp.signal;
    let chunks: Buffer[];
    try {
      chunks = await sealed.body;
    } catch (err) {
      // Positions stay unreleased: the checkpoint holds and these records are read again on restart.
      log.error('encoding a batch failed', { batch: sealed.id, records: sealed.records, error: err });
      this.undelivered++;
      return;
    }
    // Conversion may have moved records to the error output meanwhile; if none is left, there is no object to write.
    const records = sealed.acks.records;
    if (records === 0 || (chunks.length === 0 && !sealed.heldRecords)) {
      sealed.acks.release();
      return;
    }
    let encodedBytes = 0;
    for (const chunk of chunks) encodedBytes += chunk.length;
    const isErrorOutput = sealed.tags.errorOutputType !== undefined;
    const target = isErrorOutput ? (this.options.errorOutput ?? destination) : destination;
    // The error output is retried until written: it is where records end when all else failed.
    const retry = isErrorOutput ? undefined : this.options.pipeline.retry;
    const batch: EncodedBatch = {
      id: sealed.id,
      deliveryStreamName: this.options.name,
      records,
      rawBytes: sealed.rawBytes,
      compression: sealed.compression,
      chunks,
      encodedBytes,
      oldestArrivalTimestamp: sealed.oldestArrivalTimestamp,
      ...sealed.tags,
      ...(sealed.heldRecords
        ? {
            recordData: sealed.heldRecords.map((r) => r.data),
            recordSources: sealed.heldRecords.map((r) => ({ shardId: r.shardId, sequenceNumber: r.sequenceNumber, subSequenceNumber: r.subSequenceNumber, arrival: r.approximateArrivalTimestamp })),
          }
        : {}),
    };
    const deadline = retry ? Date.now() + retry.durationMs : Infinity;
    // Record-oriented batches can fail record by record: retry only what is still pending.
    const held = sealed.heldRecords;
    let pending: number[] | undefined = held ? held.map((_, i) => i) : undefined;
    let attemptBatch = batch;
    const finalFailures: Array<{ index: number; code: string; message: string; details?: Readonly<Record<string, string>> }> = [];
    let receipt: DeliveryReceipt | undefined;
    let attempt = 0;
    for (;;) {
      attempt++;
      let failed: readonly ItemFailure[] = [];
      let whole: unknown;
      try {
        receipt = await target.deliver(attemptBatch, signal);
        failed = receipt.failed ?? [];
      } catch (err) {
        if (signal.aborted) {
          this.undelivered++;
          return;
        }
        whole = err;
      }
      if (whole === undefined && failed.length === 0) break;
      this.stats.deliveryAttemptsFailed++;
      const delayMs = backoff(attempt, 1_000, 120_000);
      const outOfTime = Date.now() + delayMs > deadline;
      if (whole !== undefined) {
        const permanent = whole instanceof DeliveryError && !whole.retryable;
        if (retry && held && pending && (permanent || outOfTime)) {
          const code = whole instanceof DeliveryError ? whole.code : 'Delivery.Failed';
          for (const index of pending) finalFailures.push({ index, code, message: (whole as Error)?.message ?? String(whole) });
          break;
        }
        log.warn('delivery failed; retrying', { batch: batch.id, records, attempt, delayMs, error: whole });
      } else {
        // Per-record outcome: map the attempt's indices back to the batch's.
        const map = pending!;
        const retryable: number[] = [];
        for (const f of failed) {
          const index = map[f.index]!;
          if (f.retryable && !outOfTime) retryable.push(index);
          else finalFailures.push({ index, code: f.code, message: f.message, ...(f.details ? { details: f.details } : {}) });
        }
        pending = retryable;
        if (pending.length === 0) break;
        log.warn('some records were not taken; retrying them', { batch: batch.id, retrying: pending.length, attempt, delayMs });
        attemptBatch = subBatch(batch, pending);
      }
      await sleep(delayMs, signal);
      if (signal.aborted) {
        this.undelivered++;
        return;
      }
    }
    if (finalFailures.length > 0) {
      const failedRecords = finalFailures.map((f) => ({ record: held![f.index]!, failure: f }));
      if (this.options.deadLetters) {
        log.warn('records failed for good; they go to the dead-letter queue', { batch: batch.id, records: failedRecords.length, attempts: attempt });
        if (!(await this.toDeadLetterQueue(failedRecords, this.options.deadLetters, attempt, signal))) return;
        this.backupCopies(failedRecords, retry!.errorOutputType, attempt);
      } else {
        log.warn('records failed for good; they go to the error output', { batch: batch.id, records: failedRecords.length, attempts: attempt });
        this.toErrorOutput(sealed, failedRecords, retry!.errorOutputType, attempt);
      }
      if (finalFailures.length === records) {
        sealed.acks.release();
        return;
      }
    }
    receipt ??= { location: 'partially delivered' };
    sealed.acks.release();
    const deliveredRecords = batch.records - finalFailures.length;
    if (!sealed.tags.errorOutputType) {
      this.stats.recordsDelivered += deliveredRecords;
      this.stats.bytesDelivered += batch.rawBytes;
      this.stats.objectsDelivered++;
    }
    log.debug('delivered', { location: receipt.location, records: deliveredRecords, attempts: attempt });
    try {
      onDelivered?.({
        deliveryStreamName: this.options.name,
        location: receipt.location,
        records: deliveredRecords,
        rawBytes: batch.rawBytes,
        encodedBytes,
        reason: sealed.reason,
        attempts: attempt,
        ...(sealed.tags.errorOutputType ? { errorOutputType: sealed.tags.errorOutputType } : {}),
      });
    } catch (err) {
      log.warn('onDelivered callback failed', { error: err });
    }
  }
}

/** The same batch narrowed to some of its records (a retry of what a destination did not take). */
function subBatch(batch: EncodedBatch, indices: readonly number[]): EncodedBatch {
  const recordData = indices.map((i) => batch.recordData![i]!);
  return {
    ...batch,
    records: indices.length,
    rawBytes: recordData.reduce((n, d) => n + d.length, 0),
    recordData,
    ...(batch.recordSources ? { recordSources: indices.map((i) => batch.recordSources![i]!) } : {}),
  };
}

/** A destination's per-record failure as an error-output line's fields. */
function deliveryFailure(
  failure: { code: string; message: string; details?: Readonly<Record<string, string>> },
  errorOutputType: string,
  attempts: number,
  ended: number,
): Failure {
  return {
    errorOutputType: errorOutputType as Failure['errorOutputType'],
    errorCode: failure.code,
    errorMessage: failure.message,
    attemptsMade: attempts,
    attemptEndingTimestamp: ended,
    ...(failure.details ? { details: failure.details } : {}),
  };
}
