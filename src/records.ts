import type { Segment } from './ack.js';

/** One record as a source hands it on. `data` is passed through untouched unless a stage needs it. */
export interface SourceRecord {
  readonly data: Buffer;
  readonly partitionKey: string;
  readonly shardId: string;
  readonly sequenceNumber: string;
  /** Position inside a KPL-aggregated record; 0 for a plain record. */
  readonly subSequenceNumber: number;
  /** When the stream accepted the record, epoch milliseconds. */
  readonly approximateArrivalTimestamp: number;
  /** The record's source position in the acknowledgement model. */
  readonly segment: Segment;
}

/** Where a source hands records on. It must take them synchronously; backpressure is the budget's job. */
export interface RecordSink {
  accept(records: readonly SourceRecord[]): void;
}

export interface Source {
  /** Reads until stop(); resolves once no more records will be handed on. */
  run(sink: RecordSink): Promise<void>;
  stop(): void;
}
