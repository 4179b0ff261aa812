import { setMaxListeners } from 'node:events';
import { backoff } from './backoff.js';
import { RecordBuffer, type FlushReason, type SealedBatch } from './buffer.js';
import type { Checkpointer } from './checkpoints.js';
import { sleep, type Clock } from './clock.js';
import type { BufferSettings, DeliveryReceipt, Destination, EncodedBatch } from './destination.js';
import type { Logger } from './log.js';
import type { RecordSink, Source, SourceRecord } from './records.js';

export interface DeliveredEvent {
  readonly deliveryStreamName: string;
  readonly location: string;
  readonly records: number;
  readonly rawBytes: number;
  readonly encodedBytes: number;
  readonly reason: FlushReason;
  readonly attempts: number;
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
}

export interface DeliveryStreamOptions {
  readonly name: string;
  readonly source: Source;
  readonly destination: Destination;
  readonly bufferSettings: BufferSettings;
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
  };
  private readonly buffer: RecordBuffer;
  private readonly inflight = new Set<Promise<void>>();
  private readonly givingUp = new AbortController();
  private running: Promise<void> | undefined;
  private undelivered = 0;

  constructor(private readonly options: DeliveryStreamOptions) {
    // Every delivery in flight listens on this one signal.
    setMaxListeners(0, this.givingUp.signal);
    this.buffer = new RecordBuffer(options.bufferSettings, options.clock, (batch) => this.dispatch(batch));
  }

  get name(): string {
    return this.options.name;
  }

  get deliveriesInFlight(): number {
    return this.inflight.size;
  }

  accept(records: readonly SourceRecord[]): void {
    this.stats.recordsRead += records.length;
    for (const record of records) {
      this.stats.bytesRead += record.data.length;
      this.buffer.append(record);
    }
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
    this.buffer.flush('shutdown');
    const timer = setTimeout(() => this.givingUp.abort(), timeoutMs);
    while (this.inflight.size > 0) await Promise.all(this.inflight);
    clearTimeout(timer);
    const checkpointed = await this.options.checkpointer.stop();
    await this.options.destination.close();
    if (this.undelivered > 0) {
      this.options.log.error('stopped with undelivered batches; their records will be read again at the next start', {
        batches: this.undelivered,
      });
    }
    return checkpointed && this.undelivered === 0;
  }

  private dispatch(batch: SealedBatch): void {
    const delivery = this.deliver(batch).finally(() => this.inflight.delete(delivery));
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
    let encodedBytes = 0;
    for (const chunk of chunks) encodedBytes += chunk.length;
    const batch: EncodedBatch = {
      id: sealed.id,
      deliveryStreamName: this.options.name,
      records: sealed.records,
      rawBytes: sealed.rawBytes,
      compression: sealed.compression,
      chunks,
      encodedBytes,
      oldestArrivalTimestamp: sealed.oldestArrivalTimestamp,
    };
    let receipt: DeliveryReceipt | undefined;
    let attempt = 0;
    while (!receipt) {
      attempt++;
      try {
        receipt = await destination.deliver(batch, signal);
      } catch (err) {
        if (signal.aborted) {
          this.undelivered++;
          return;
        }
        this.stats.deliveryAttemptsFailed++;
        const delayMs = backoff(attempt, 1_000, 60_000);
        log.warn('delivery failed; retrying', { batch: batch.id, records: batch.records, attempt, delayMs, error: err });
        await sleep(delayMs, signal);
      }
    }
    sealed.acks.release();
    this.stats.recordsDelivered += batch.records;
    this.stats.bytesDelivered += batch.rawBytes;
    this.stats.objectsDelivered++;
    log.debug('delivered', { location: receipt.location, records: batch.records, attempts: attempt });
    try {
      onDelivered?.({
        deliveryStreamName: this.options.name,
        location: receipt.location,
        records: batch.records,
        rawBytes: batch.rawBytes,
        encodedBytes,
        reason: sealed.reason,
        attempts: attempt,
      });
    } catch (err) {
      log.warn('onDelivered callback failed', { error: err });
    }
  }
}
