import { Acknowledgements, Segment } from '../ack.js';
import { backoff } from '../backoff.js';
import type { ByteBudget } from '../budget.js';
import type { BufferSet } from '../buffer.js';
import { clockSleep, type Clock } from '../clock.js';
import { DeadLetterQueue, letterId, type DeadLetter, type DeadLetterParking } from '../dlq.js';
import { errorOutputLine } from '../error-output.js';
import type { Failure } from '../failure.js';
import type { Logger } from '../log.js';
import type { SourceRecord } from '../records.js';
import type { DeliveryStreamStats } from './stats.js';

export interface RecordEndsOptions {
  readonly name: string;
  /** The destination's configuration key, recorded in dead letters. */
  readonly destinationKey: string;
  /** The error output's buffers. */
  readonly errors: BufferSet;
  /** Of these records, those read under a lease this worker no longer holds (parking is fenced). */
  readonly disowned?: ((records: readonly SourceRecord[]) => Promise<ReadonlySet<SourceRecord>>) | undefined;
  /** Where records that will not be delivered are parked; without it they go to the error output. */
  readonly deadLetters?: DeadLetterParking | undefined;
  /** Park records a transform failed in the DLQ rather than the error output. */
  readonly processingFailuresToDeadLetters: boolean;
  readonly stats: DeliveryStreamStats;
  /** The records' bytes are held against it until they end here. */
  readonly budget: ByteBudget;
  readonly clock: Clock;
  readonly log: Logger;
  /** Aborted when shutdown gives up: parking stops retrying, positions stay held. */
  readonly signal: AbortSignal;
  /** Shutdown waits for work registered here. */
  readonly track: (work: Promise<unknown>) => void;
}

/** A failed record of a batch, as it ends. */
export interface FailedRecord {
  readonly record: SourceRecord;
  readonly failure: Failure;
}

/**
 * Where records end when they are not delivered: the error output, the dead-letter queue, or
 * dropped on purpose. Each record's position moves with it and is released once it is there, so
 * a shard's checkpoint passes it only then.
 */
export class RecordEnds {
  private parkingQueue: FailedRecord[] = [];

  constructor(private readonly options: RecordEndsOptions) {}

  /**
   * A record that will not be delivered, holding its own position: to the error output, or the DLQ
   * when configured for its kind. `inBatch`: a sealed batch holds its bytes (and gives them back).
   */
  failed(record: SourceRecord, failure: Failure, inBatch = false): void {
    if (!inBatch && failure.errorOutputType === 'processing-failed' && this.options.deadLetters && this.options.processingFailuresToDeadLetters) {
      this.parkSoon({ record, failure });
      return;
    }
    this.toErrorOutput(record, failure, !inBatch);
  }

  /** Dropped on purpose: the records reached their end here. */
  dropped(records: readonly SourceRecord[]): void {
    this.options.stats.recordsDropped += records.length;
    const acks = new Acknowledgements();
    let bytes = 0;
    for (const record of records) {
      acks.add(record.segment);
      bytes += record.data.length;
    }
    this.options.budget.give(bytes);
    acks.release();
  }

  /**
   * Records of a batch that failed for good, whose positions the batch's acknowledgements hold.
   * With the DLQ they are parked (their positions released with the batch) and copied to the
   * backup bucket, as Firehose always writes failed records there; without it, or when too large
   * for the DLQ's bound, their positions move to the error output. False: given up at shutdown.
   */
  async batchFailures(acks: Acknowledgements, failed: readonly FailedRecord[], partitionKeys: Readonly<Record<string, string>> | undefined): Promise<boolean> {
    const dlq = this.options.deadLetters;
    if (!dlq) {
      for (const { record, failure } of failed) {
        acks.remove(record.segment);
        this.toErrorOutput(record, failure, false);
      }
      return true;
    }
    const parked = await this.park(failed, partitionKeys);
    if (parked === undefined) return false;
    const { tooLarge, disowned } = parked;
    for (const item of failed) {
      if (disowned.has(item.record)) acks.remove(item.record.segment);
      else if (tooLarge.has(item.record)) {
        acks.remove(item.record.segment);
        this.toErrorOutput(item.record, item.failure, false);
      }
    }
    this.backupCopies(failed.filter((f) => !tooLarge.has(f.record) && !disowned.has(f.record)));
    return true;
  }

  /** The record's error line joins the error output's buffer; `owned`: the record's own bytes are let go here. */
  private toErrorOutput(record: SourceRecord, failure: Failure, owned: boolean): void {
    this.options.stats.recordsToErrorOutput++;
    const line = errorOutputLine(record, failure);
    this.options.budget.take(line.length);
    if (owned) this.options.budget.give(record.data.length);
    this.options.errors.append(failure.errorOutputType, { errorOutputType: failure.errorOutputType }, { ...record, data: line });
  }

  /** Copies in the backup bucket, acknowledged on a detached segment that no checkpoint waits for. */
  private backupCopies(parked: readonly FailedRecord[]): void {
    if (parked.length === 0) return;
    const copies = Segment.detached(parked.length);
    for (const { record, failure } of parked) {
      const line = errorOutputLine(record, failure);
      this.options.budget.take(line.length);
      this.options.errors.append(failure.errorOutputType, { errorOutputType: failure.errorOutputType }, { ...record, data: line, segment: copies });
    }
    this.options.stats.backupCopies += parked.length;
  }

  /**
   * Processing failures gathered during one turn of the event loop are parked together; shutdown
   * waits for them like any delivery. Their positions are released once Redis has them.
   */
  private parkSoon(item: FailedRecord): void {
    if (this.parkingQueue.length === 0) {
      queueMicrotask(() => {
        const batch = this.parkingQueue;
        this.parkingQueue = [];
        const work = (async () => {
          const parked = await this.park(batch, undefined);
          if (parked === undefined) {
            this.options.stats.recordsHeld += batch.length;
            return;
          }
          const acks = new Acknowledgements();
          let bytes = 0;
          for (const { record, failure } of batch) {
            if (parked.disowned.has(record)) bytes += record.data.length;
            else if (parked.tooLarge.has(record)) this.toErrorOutput(record, failure, true);
            else {
              acks.add(record.segment);
              bytes += record.data.length;
            }
          }
          this.options.budget.give(bytes);
          acks.release();
        })().catch((err: unknown) => {
          // Their positions stay held (read again after a restart); their bytes are let go, or reading would stall on them.
          this.options.stats.recordsHeld += batch.length;
          let bytes = 0;
          for (const { record } of batch) bytes += record.data.length;
          this.options.budget.give(bytes);
          this.options.log.error('parking failed records failed unexpectedly; they will be read again after a restart', { error: err });
        });
        this.options.track(work);
      });
    }
    this.parkingQueue.push(item);
  }

  /**
   * Parks until Redis has them: while the queue is full or Redis is away, the positions stay
   * held, the byte budget fills and reading pauses. Resolves the records too large for the
   * queue's bound (they go to the error output) and those read under a lease this worker no
   * longer holds (fenced: not parked here, the lease's new owner reads and parks them), or
   * undefined if given up at shutdown.
   */
  private async park(failed: readonly FailedRecord[], partitionKeys: Readonly<Record<string, string>> | undefined): Promise<{ tooLarge: Set<SourceRecord>; disowned: ReadonlySet<SourceRecord> } | undefined> {
    const { deadLetters: dlq, clock, log, signal, name, destinationKey } = this.options;
    let disowned: ReadonlySet<SourceRecord> = new Set();
    for (let attempt = 1; this.options.disowned; attempt++) {
      try {
        disowned = await this.options.disowned(failed.map((f) => f.record));
        break;
      } catch (err) {
        log.warn('cannot check the leases of records to park; retrying', { error: err });
      }
      if (signal.aborted) return undefined;
      await clockSleep(clock, backoff(attempt, 1_000, 30_000), signal);
      if (signal.aborted) return undefined;
    }
    if (disowned.size > 0) log.warn('not parking records read under a lease this worker lost; its new owner reads them again', { records: disowned.size });
    const byId = new Map<string, SourceRecord>();
    let rest: readonly DeadLetter[] = failed.filter(({ record }) => !disowned.has(record)).map(({ record, failure }) => {
      const letter = DeadLetterQueue.letter(record, name, destinationKey, {
        errorOutputType: failure.errorOutputType,
        errorCode: failure.code,
        errorMessage: failure.message,
        attemptsMade: failure.attemptsMade,
        lastAttemptAt: failure.endedAt,
        partitionKeys: failure.errorOutputType === 'processing-failed' ? undefined : (record.partitionKeys ?? partitionKeys),
      });
      byId.set(letterId(letter), record);
      return letter;
    });
    const tooLarge = new Set<SourceRecord>();
    for (let attempt = 1; rest.length > 0; attempt++) {
      try {
        const result = await dlq!.park(rest);
        this.options.stats.recordsToDeadLetterQueue += result.parked;
        for (const letter of result.tooLarge) tooLarge.add(byId.get(letterId(letter))!);
        if (result.tooLarge.length > 0) log.error('records larger than the dead-letter queue\'s whole bound go to the error output instead', { records: result.tooLarge.length });
        rest = result.rest;
        if (rest.length === 0) break;
        log.error('DEAD-LETTER QUEUE FULL: delivery is paused until entries are redriven or purged (firehose dlq)', { waiting: rest.length });
      } catch (err) {
        log.warn('cannot write to the dead-letter queue; retrying', { error: err });
      }
      if (signal.aborted) return undefined;
      await clockSleep(clock, backoff(attempt, 1_000, 30_000), signal);
      if (signal.aborted) return undefined;
    }
    return { tooLarge, disowned };
  }
}
