import { setMaxListeners } from 'node:events';
import type { Acknowledgements } from './ack.js';
import { ByteBudget } from './budget.js';
import { failpoint } from './failpoints.js';
import { BufferSet, type FlushReason, type Holding, type SealedBatch } from './buffer.js';
import type { ManifestBuilder } from './archive/manifest.js';
import { clockSleep, type Clock } from './clock.js';
import { backoff } from './backoff.js';
import { ParquetEncoder } from './conversion/encoder.js';
import type { ConversionPool } from './conversion/pool.js';
import type { Destination, EncodedBatch } from './destination.js';
import type { DeadLetterParking } from './dlq.js';
import { RecordListEncoder } from './encoder.js';
import type { Failure } from './failure.js';
import type { Logger } from './log.js';
import { deliverWithRetries, DELIVERY_BACKOFF, type RetryPolicy } from './pipeline/delivery.js';
import { RecordEnds, type FailedRecord } from './pipeline/record-ends.js';
import { Router } from './pipeline/router.js';
import type { PipelineSettings } from './pipeline-settings.js';
import { emptyStats, type DeliveryStreamStats } from './pipeline/stats.js';
import type { Entry, OpenIntent, RecordSink, Source, SourceRecord } from './records.js';
import type { TransformPool } from './transform/pool.js';
import { TransformStage, type TransformIdentity } from './transform/stage.js';

export type { DeliveryStreamStats };

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

/** The one buffer of source record backup copies. */
const SOURCE_BACKUP_TAGS = { sourceBackup: true } as const;

export interface DeliveryStreamOptions {
  readonly name: string;
  readonly source: Source;
  readonly destination: Destination;
  /** Where source record backups go (S3BackupMode Enabled), with pipeline.sourceBackup's buffering. */
  readonly sourceBackup?: Destination;
  /** Where the error output goes, when not the destination itself (an HTTP endpoint's S3 backup). */
  readonly errorOutput?: Destination;
  readonly pipeline: PipelineSettings;
  /** The running transform module, when processing has one. */
  readonly transforms?: TransformPool;
  /** Conversion threads, when the destination converts records to Parquet. */
  readonly conversions?: ConversionPool;
  /** Where records that will not be delivered are parked; without it they go to the error output. */
  readonly deadLetters?: DeadLetterParking;
  /** The destination's configuration key, recorded in dead letters. */
  readonly destinationKey?: string;
  /** The destination's `destination` label in /metrics. */
  readonly destinationLabel?: string;
  /** Park records a transform failed in the DLQ rather than the error output. */
  readonly processingFailuresToDeadLetters?: boolean;
  readonly identity: TransformIdentity;
  readonly maxActivePartitions?: number;
  /** The process's byte budget: records count against it from accept() until they end. */
  readonly budget?: ByteBudget;
  readonly clock: Clock;
  readonly log: Logger;
  readonly onDelivered?: (event: DeliveredEvent) => void;
}

/**
 * One delivery stream: source → transform → router → buffers → delivery with retries → record
 * ends. A batch's positions are released only once the destination has it (or its records ended
 * in the error output or the DLQ); until then the records count against the byte budget and the
 * source's positions stay behind them, so a crash re-reads rather than loses.
 */
export class DeliveryStream implements RecordSink {
  readonly stats: DeliveryStreamStats = emptyStats();
  readonly transform: TransformStage | undefined;
  private readonly objects: BufferSet;
  private readonly errors: BufferSet;
  /** Source record backup copies, when S3BackupMode is Enabled. */
  private readonly backups: BufferSet | undefined;
  private readonly router: Router;
  private readonly ends: RecordEnds;
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly givingUp = new AbortController();
  private running: Promise<void> | undefined;
  private readonly budget: ByteBudget;
  private readonly stopListening: () => void;
  /** The last object (or request) delivered, for the status page. */
  lastDelivery: { readonly at: number; readonly location: string; readonly records: number; readonly bytes: number } | undefined;
  /** Sealed batches being delivered: their oldest arrival times (DataFreshness counts them). */
  private readonly undelivered = new Map<string, number>();
  /** Exactly-once: per shard, the delivery of its latest batch; a shard's batches are recorded, written and committed in order. */
  private readonly shardDeliveries = new Map<string, Promise<void>>();
  /** Exactly-once: per shard, where the batch an earlier attempt recorded ends (cut there when re-read). */
  private readonly reformations = new Map<string, OpenIntent>();

  constructor(private readonly options: DeliveryStreamOptions) {
    // Every delivery in flight listens on this one signal.
    setMaxListeners(0, this.givingUp.signal);
    const { pipeline, clock, log } = options;
    this.budget = options.budget ?? new ByteBudget(Number.MAX_SAFE_INTEGER);
    const dispatch = (batch: SealedBatch) => this.dispatch(batch);
    // Error output lines end in "\n" themselves, and hold JSON whatever the destination holds.
    this.errors = new BufferSet({ ...pipeline.buffer, encoding: pipeline.errorOutputEncoding, appendNewlineDelimiter: false, maxRecords: undefined, manifest: false }, clock, 16, dispatch, undefined, undefined, this.budget);
    const backup = pipeline.sourceBackup;
    this.backups = backup && options.sourceBackup ? new BufferSet(backup.buffer, clock, 1, dispatch, undefined, undefined, this.budget) : undefined;
    this.ends = new RecordEnds({
      disowned: options.source.disowned?.bind(options.source),
      name: options.name,
      destinationKey: options.destinationKey ?? 'destination',
      errors: this.errors,
      deadLetters: options.deadLetters,
      processingFailuresToDeadLetters: options.processingFailuresToDeadLetters ?? false,
      stats: this.stats,
      budget: this.budget,
      clock,
      log,
      signal: this.givingUp.signal,
      track: (work) => this.track(work),
    });
    this.objects = new BufferSet(pipeline.buffer, clock, options.maxActivePartitions ?? MAX_ACTIVE_PARTITIONS, dispatch, () => this.stats.partitionCountExceeded++, this.encoderFactory(), this.budget);
    this.router = new Router(pipeline, this.objects, this.ends, options.destination, clock);
    const transform = pipeline.processing?.transform;
    if (transform && !options.transforms) throw new Error('a transform is configured but no transform pool was given');
    this.transform =
      transform && options.transforms
        ? new TransformStage(transform, options.transforms, options.identity, clock, {
            transformed: (record, keys) => {
              if (this.reformations.size > 0) this.cutIfPast(record);
              this.router.route(record, keys);
              if (this.reformations.size > 0) this.cutIfReformed(record);
            },
            dropped: (records) => this.ends.dropped(records),
            failed: (record, failure) => this.ends.failed(record, failure),
          }, log, this.budget, pipeline.exactlyOnce !== undefined)
        : undefined;
    // Readers waiting for budget: what the buffers and the transform's buffer hold comes back only
    // once it moves on. The budget decides whether sealing is worth it (what is open, over every
    // stream, against the limit) and which streams seal.
    this.stopListening = this.budget.onPressure({
      openBytes: () => this.buffers.bytes + (this.transform?.pendingSize ?? 0),
      seal: () => {
        this.stats.backpressureSeals++;
        this.flush('backpressure');
      },
    });
  }

  private encoderFactory() {
    const { pipeline, conversions, clock } = this.options;
    const conversion = pipeline.conversion;
    if (conversion) {
      if (!conversions) throw new Error('format conversion is configured but no conversion pool was given');
      return (acks: Acknowledgements, holding: Holding, manifest: ManifestBuilder | undefined) =>
        new ParquetEncoder(conversions, conversion, acks, holding, (record, message) =>
          this.ends.failed(record, { errorOutputType: 'format-conversion-failed', code: 'DataFormatConversion.MalformedData', message, attemptsMade: 1, endedAt: clock.now() }, true),
          this.stats,
          manifest,
        );
    }
    return pipeline.recordOriented ? () => new RecordListEncoder() : undefined;
  }

  get name(): string {
    return this.options.name;
  }

  /**
   * Readiness: what of its source, destination and error output did not answer within the signal's
   * time, each with its reason (empty: all answered). They are asked at once.
   */
  async probe(signal: AbortSignal): Promise<string[]> {
    const { source, destination, errorOutput, sourceBackup } = this.options;
    const parts: Array<[string, ((signal: AbortSignal) => Promise<void>) | undefined]> = [
      ['source', source.probe?.bind(source)],
      ['destination', destination.probe?.bind(destination)],
      ['error output', errorOutput?.probe?.bind(errorOutput)],
      ['source record backup', sourceBackup?.probe?.bind(sourceBackup)],
    ];
    const aborted = new Promise<never>((_, reject) => signal.addEventListener('abort', () => reject(new Error('no answer in time')), { once: true }));
    const problems = await Promise.all(
      parts.map(async ([what, probe]) => {
        if (!probe) return undefined;
        try {
          await Promise.race([probe(signal), aborted]);
          return undefined;
        } catch (err) {
          return `${this.name}: ${what}: ${(err as Error).message}`;
        }
      }),
    );
    return problems.filter((p) => p !== undefined);
  }

  /** The destination's `destination` label in /metrics. */
  get destinationLabel(): string {
    return this.options.destinationLabel ?? 'destination';
  }

  get source(): Source {
    return this.options.source;
  }

  /** The size hint its buffers fill to. */
  get bufferSizeBytes(): number {
    return this.options.pipeline.buffer.sizeBytes;
  }

  /** Records held in open buffers, transform buffers aside. */
  get bufferedRecords(): number {
    return this.objects.buffered + this.errors.buffered + (this.backups?.buffered ?? 0);
  }

  /** What the open buffers hold, and how many partitions hold records. */
  get buffers(): { bytes: number; records: number; partitions: number } {
    return { bytes: this.objects.heldBytes + this.errors.heldBytes + (this.backups?.heldBytes ?? 0), records: this.bufferedRecords, partitions: this.objects.active };
  }

  accept(records: readonly SourceRecord[], entry: Entry = 'before-transform'): void {
    let bytes = 0;
    for (const record of records) bytes += record.data.length;
    // From here the pipeline holds these bytes: it gives them back as records move on and end.
    this.budget.take(bytes);
    this.stats.recordsRead += records.length;
    this.stats.bytesRead += bytes;
    const transform = entry === 'before-transform' ? this.transform : undefined;
    const reforming = this.reformations.size > 0;
    const backups = entry === 'before-transform' ? this.backups : undefined;
    // The copies hold their own bytes, and their records' positions until they are written too.
    if (backups) this.budget.take(bytes);
    for (let i = 0; i < records.length; i++) {
      const record = records[i]!;
      if (backups) {
        record.segment.hold(1);
        backups.append('source-backup', SOURCE_BACKUP_TAGS, record);
        this.stats.sourceBackupRecords++;
      }
      if (reforming && !transform) this.cutIfPast(record);
      if (transform) transform.accept(record);
      else this.router.route(record, undefined);
      if (reforming && !transform) this.cutIfReformed(record);
    }
  }

  /** Exactly-once: seals the one shard's buffer (its lease moved: what it holds was read under the old epoch). */
  sealShard(shardId: string, reason: FlushReason): boolean {
    if (!this.options.pipeline.exactlyOnce) return false;
    this.objects.flushKey(`shard:${shardId}`, reason);
    return true;
  }

  /** Exactly-once: the shard's next batch must be exactly what an earlier attempt recorded. */
  reform(intent: OpenIntent): void {
    if (!this.options.pipeline.exactlyOnce) return;
    this.reformations.set(intent.shardId, intent);
    this.objects.hold(`shard:${intent.shardId}`, true);
    this.stats.batchesReformed++;
    if (intent.configHash !== this.options.pipeline.exactlyOnce?.configHash) {
      this.stats.reformedUnderOtherConfig++;
      this.options.log.warn('re-forming a batch recorded under another configuration: its object may differ from the one an earlier attempt wrote (both are kept; exactly-once may not hold for these records)', { shardId: intent.shardId, key: intent.key });
    }
  }

  /** Seals the shard's buffer right after the last record of a batch being re-formed. */
  private cutIfReformed(record: SourceRecord): void {
    const intent = this.reformations.get(record.shardId);
    if (!intent || record.sequenceNumber !== intent.last.sequenceNumber || record.subSequenceNumber !== intent.last.subSequenceNumber) return;
    this.endReformation(record.shardId);
  }

  /**
   * A record past the intent's end, its last record never seen (aged out of the stream, or the
   * transform dropped it this time): cut before it rather than hold the shard forever. The batch
   * then ends elsewhere than its intent said; it is written under its own key (none lost).
   */
  private cutIfPast(record: SourceRecord): void {
    const last = this.reformations.get(record.shardId)?.last;
    if (!last) return;
    const a = record.sequenceNumber;
    const b = last.sequenceNumber;
    const past = a.length !== b.length ? a.length > b.length : a > b || (a === b && record.subSequenceNumber > last.subSequenceNumber);
    if (!past) return;
    this.options.log.warn('re-formation: the intent\'s last record did not come; the batch is cut before the next one', { shardId: record.shardId, last: `${b}:${last.subSequenceNumber}` });
    this.endReformation(record.shardId);
  }

  private endReformation(shardId: string): void {
    this.reformations.delete(shardId);
    this.objects.hold(`shard:${shardId}`, false);
    this.objects.flushKey(`shard:${shardId}`, 're-formation');
  }

  /** Seals every open buffer now, whatever its size and age (a finite source ran out, a test drives time by hand). */
  flush(reason: FlushReason = 'shutdown'): void {
    this.transform?.flush();
    this.objects.flushAll(reason);
    this.errors.flushAll(reason);
    this.backups?.flushAll(reason);
  }

  start(): Promise<void> {
    this.running = this.options.source.run(this);
    return this.running;
  }

  /**
   * Stops reading, seals the buffers, delivers what is left (giving up after the timeout: those
   * records stay uncommitted and are read again at the next start) and commits the source's
   * positions. Resolves true when everything read reached an end and was committed.
   */
  async stop(timeoutMs: number): Promise<boolean> {
    const { source, log, destination } = this.options;
    this.stopListening();
    source.stop();
    await this.running?.catch(() => undefined);
    if (this.transform) {
      this.transform.flush();
      await this.transform.drain();
    }
    const timer = setTimeout(() => this.givingUp.abort(), timeoutMs);
    // In rounds: encoding an object can send records on to the error output (conversion failures).
    do {
      this.objects.flushAll('shutdown');
      this.errors.flushAll('shutdown');
      this.backups?.flushAll('shutdown');
      while (this.inflight.size > 0) await Promise.all(this.inflight);
    } while (this.objects.buffered > 0 || this.errors.buffered > 0 || (this.backups?.buffered ?? 0) > 0);
    clearTimeout(timer);
    const unreleased = source.outstandingSegments;
    const committed = await source.close();
    if (unreleased > 0) log.error('stopped with records that reached no end; they will be read again at the next start', { segments: unreleased });
    await destination.close();
    if (this.options.errorOutput && this.options.errorOutput !== destination) await this.options.errorOutput.close();
    await this.options.sourceBackup?.close();
    return committed && unreleased === 0;
  }

  /**
   * Exactly-once: the batch's lease moved before its intent or its commit. Its positions stay held
   * (never checkpointed here); the lease's new owner re-reads and writes the same object.
   */
  private fenced(sealed: SealedBatch, answer: string): void {
    sealed.holding.release();
    if (answer === 'given up') {
      this.stats.recordsHeld += sealed.records;
      return;
    }
    this.stats.batchesFenced++;
    this.options.log.warn('batch fenced: its shard\'s lease moved; the new owner writes it', { shardId: sealed.range?.shardId, answer, records: sealed.records });
  }

  /** Retries a call to the source's positions store (Redis) until it answers, or shutdown gives up. */
  private async untilAnswered<T>(what: string, call: () => Promise<T>): Promise<T | 'given up'> {
    const { clock, log } = this.options;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (err) {
        log.warn(`${what} failed; retrying`, { error: err });
      }
      if (this.givingUp.signal.aborted) return 'given up';
      await clockSleep(clock, backoff(attempt, 500, 10_000), this.givingUp.signal);
      if (this.givingUp.signal.aborted) return 'given up';
    }
  }

  private track(work: Promise<unknown>): void {
    const tracked = work.finally(() => this.inflight.delete(tracked));
    this.inflight.add(tracked);
  }

  private dispatch(batch: SealedBatch): void {
    // Exactly-once: one shard's batches are recorded, written and committed one after the other.
    const shard = batch.range && this.options.pipeline.exactlyOnce ? batch.range.shardId : undefined;
    const previous = shard === undefined ? undefined : this.shardDeliveries.get(shard);
    const delivery = previous ? previous.then(() => this.deliver(batch)) : this.deliver(batch);
    if (shard !== undefined) {
      const settled = delivery.catch(() => undefined);
      this.shardDeliveries.set(shard, settled);
      void settled.then(() => {
        if (this.shardDeliveries.get(shard) === settled) this.shardDeliveries.delete(shard);
      });
    }
    this.track(
      delivery.catch((err: unknown) => {
        // A bug, not an input: the batch's positions stay held (read again after a restart); the
        // process lives on, and its bytes are let go so that reading does not stall on them.
        this.stats.recordsHeld += batch.records;
        batch.holding.release();
        this.options.log.error('delivering a batch failed unexpectedly', { batch: batch.id, error: err });
      }),
    );
  }

  /**
   * Firehose's DataFreshness: how long the oldest record not yet delivered (buffered, or in a batch
   * being delivered) has been in the stream, in ms; 0 when nothing waits.
   */
  dataFreshnessMs(now = this.options.clock.now()): number {
    let oldest = this.objects.oldestArrival;
    for (const arrival of this.undelivered.values()) if (arrival < oldest) oldest = arrival;
    return oldest === Infinity ? 0 : Math.max(0, now - oldest);
  }

  private async deliver(sealed: SealedBatch): Promise<void> {
    if (!sealed.tags.errorOutputType && !sealed.tags.sourceBackup) this.undelivered.set(sealed.id, sealed.oldestArrivalTimestamp);
    try {
      await this.deliverSealed(sealed);
    } finally {
      this.undelivered.delete(sealed.id);
    }
  }

  private async deliverSealed(sealed: SealedBatch): Promise<void> {
    const { log, destination, onDelivered, clock, pipeline } = this.options;
    let chunks: Buffer[];
    try {
      chunks = await sealed.body;
    } catch (err) {
      // Positions stay unreleased: the checkpoint holds and these records are read again on restart.
      sealed.holding.release();
      this.stats.recordsHeld += sealed.records;
      log.error('encoding a batch failed; its records will be read again after a restart', { batch: sealed.id, records: sealed.records, error: err });
      return;
    }
    // Conversion may have moved records to the error output meanwhile; if none is left, there is no object to write.
    const records = sealed.acks.records;
    if (records === 0 || (chunks.length === 0 && !sealed.heldRecords)) {
      sealed.acks.release();
      sealed.holding.release();
      return;
    }
    const batch = encodedBatch(this.options.name, sealed, chunks, pipeline.exactlyOnce?.configHash);
    const startedAt = clock.now();
    const isBackup = sealed.tags.sourceBackup === true;
    const isErrorOutput = sealed.tags.errorOutputType !== undefined;
    const target = isBackup ? this.options.sourceBackup! : isErrorOutput ? (this.options.errorOutput ?? destination) : destination;
    // The error output is retried until written: it is where records end when all else failed. So
    // is a backup copy: its record's position waits for it.
    const policy: RetryPolicy = { durationMs: isErrorOutput || isBackup ? undefined : pipeline.retry?.durationMs, ...DELIVERY_BACKOFF };
    const exactly = !isErrorOutput && sealed.range && pipeline.exactlyOnce && this.source.recordIntent ? sealed.range : undefined;
    if (exactly && this.reformations.has(exactly.shardId)) {
      // Shutdown came before the re-read reached the intent's end: a partial batch is never written.
      sealed.holding.release();
      this.stats.recordsHeld += records;
      log.warn('stopped before a re-formed batch was complete: it is re-formed at the next start', { shardId: exactly.shardId });
      return;
    }
    if (exactly) {
      const recorded = await this.untilAnswered('recording a batch\'s intent', () => this.source.recordIntent!(exactly, destination.objectKeyFor!(batch), pipeline.exactlyOnce!.configHash));
      if (recorded !== 'recorded') return this.fenced(sealed, recorded);
      failpoint('after-intent');
    }
    failpoint('before-upload');
    const outcome = await deliverWithRetries(target, batch, policy, {
      clock,
      signal: this.givingUp.signal,
      log,
      onAttemptFailed: () => this.stats.deliveryAttemptsFailed++,
    });
    if (!outcome.ended) {
      this.stats.recordsHeld += records;
      return;
    }
    failpoint('after-upload');
    if (exactly) {
      if (outcome.receipt?.createOnly === 'adopted') this.stats.objectsAdopted++;
      const committed = await this.untilAnswered('committing a batch', () => this.source.commitBatch!(exactly));
      if (committed !== 'committed') return this.fenced(sealed, committed);
    }
    if (outcome.failures.length > 0) {
      const endedAt = clock.now();
      const errorOutputType = pipeline.retry?.errorOutputType ?? 'http-endpoint-failed';
      const failed: FailedRecord[] = outcome.failures.map(({ index, reason, attempts }) => ({
        record: sealed.heldRecords![index]!,
        failure: { ...reason, errorOutputType, attemptsMade: attempts, endedAt } satisfies Failure,
      }));
      log.warn(`records failed for good; they go to the ${this.options.deadLetters ? 'dead-letter queue' : 'error output'}`, { batch: batch.id, records: failed.length, attempts: outcome.attempts });
      if (!(await this.ends.batchFailures(sealed.acks, failed, sealed.tags.partitionKeys))) {
        this.stats.recordsHeld += records;
        return;
      }
    }
    sealed.acks.release();
    sealed.holding.release();
    const delivered = records - outcome.failures.length;
    if (delivered === 0) return;
    if (isBackup) {
      this.stats.sourceBackupRecordsWritten += delivered;
      this.stats.sourceBackupBytesWritten += batch.rawBytes;
    } else if (!isErrorOutput) {
      this.stats.recordsDelivered += delivered;
      this.stats.bytesDelivered += batch.rawBytes;
      this.stats.objectsDelivered++;
    }
    const location = outcome.receipt?.location ?? 'partially delivered';
    if (!isErrorOutput && !isBackup) this.lastDelivery = { at: clock.now(), location, records: delivered, bytes: batch.rawBytes };
    log.info('delivered', { location, records: delivered, rawBytes: batch.rawBytes, encodedBytes: batch.encodedBytes, attempts: outcome.attempts, durationMs: clock.now() - startedAt, reason: sealed.reason });
    try {
      onDelivered?.({
        deliveryStreamName: this.options.name,
        location,
        records: delivered,
        rawBytes: batch.rawBytes,
        encodedBytes: batch.encodedBytes,
        reason: sealed.reason,
        attempts: outcome.attempts,
        ...(sealed.tags.errorOutputType ? { errorOutputType: sealed.tags.errorOutputType } : {}),
      });
    } catch (err) {
      log.warn('onDelivered callback failed', { error: err });
    }
  }
}

/** What the destination is asked to deliver: the sealed batch's body, and its records when it keeps them. */
function encodedBatch(deliveryStreamName: string, sealed: SealedBatch, chunks: Buffer[], configHash: string | undefined): EncodedBatch {
  let encodedBytes = 0;
  for (const chunk of chunks) encodedBytes += chunk.length;
  const held = sealed.heldRecords;
  return {
    id: sealed.id,
    deliveryStreamName,
    records: sealed.acks.records,
    rawBytes: sealed.rawBytes,
    encoding: sealed.encoding,
    chunks,
    encodedBytes,
    oldestArrivalTimestamp: sealed.oldestArrivalTimestamp,
    ...sealed.tags,
    ...(sealed.manifest ? { manifest: sealed.manifest } : {}),
    ...(sealed.range && configHash !== undefined && !sealed.tags.errorOutputType
      ? { exactlyOnce: { range: { shardId: sealed.range.shardId, first: sealed.range.first, last: sealed.range.last }, configHash } }
      : {}),
    ...(held
      ? {
          recordData: held.map((r) => r.data),
          recordSources: held.map((r) => ({ shardId: r.shardId, sequenceNumber: r.sequenceNumber, subSequenceNumber: r.subSequenceNumber, arrival: r.approximateArrivalTimestamp })),
        }
      : {}),
  };
}
