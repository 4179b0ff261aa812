import { ShardProgress, type ProgressListener, type Segment } from '../ack.js';
import type { ByteBudget } from '../budget.js';
import type { DeadLetterEntry, DeadLetterFilter, DeadLetterQueue } from '../dlq.js';
import { failedBeforeTransform } from '../failure.js';
import type { Logger } from '../log.js';
import type { Entry, RecordSink, Source, SourceRecord } from '../records.js';

export interface RedriveCounts {
  /** Entries handed on. */
  read: number;
  bytes: number;
  /** Entries whose records reached an end and were removed from the queue. */
  removed: number;
  /** Entries parked again (failed again): left in the queue with their attempts raised. */
  keptInQueue: number;
}

/**
 * The dead-letter queue as a source: a redrive. Entries re-enter their delivery stream where they
 * left it — before the transform for processing failures, after it for destination failures — and
 * go through the same buffers, encoder, partitioning, destination, retries and acknowledgements as
 * any record. A position here is an entry; committing it removes the entry, and only when its
 * record reached an end again and was not parked again meanwhile.
 */
export class DeadLetterSource implements Source, ProgressListener {
  readonly identity: string;
  readonly counts: RedriveCounts = { read: 0, bytes: 0, removed: 0, keptInQueue: 0 };
  private readonly progress: ShardProgress;
  private readonly entriesOf = new Map<Segment, readonly DeadLetterEntry[]>();
  private readonly removals = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private removalFailed = false;
  private pages = 0;

  constructor(
    private readonly dlq: DeadLetterQueue,
    private readonly filter: DeadLetterFilter,
    private readonly budget: ByteBudget,
    private readonly log: Logger,
  ) {
    this.identity = `dead-letters/${dlq.deliveryStreamName}`;
    this.progress = new ShardProgress('dead-letters', undefined, this);
  }

  get outstandingSegments(): number {
    return this.progress.outstandingSegments;
  }

  status(): Readonly<Record<string, unknown>> {
    return { source: this.identity, ...this.counts };
  }

  async run(sink: RecordSink): Promise<void> {
    const signal = this.stopping.signal;
    for await (const page of this.dlq.entries(this.filter)) {
      await this.budget.whenAvailable(signal);
      if (signal.aborted) break;
      const before = page.filter((e) => failedBeforeTransform(e.letter.errorOutputType, e.letter.errorCode));
      const after = page.filter((e) => !failedBeforeTransform(e.letter.errorOutputType, e.letter.errorCode));
      this.handOn(before, 'before-transform', sink);
      this.handOn(after, 'after-transform', sink);
    }
    this.progress.markReadToEnd();
  }

  private handOn(entries: readonly DeadLetterEntry[], entry: Entry, sink: RecordSink): void {
    if (entries.length === 0) return;
    const records: Array<{ -readonly [K in keyof SourceRecord]: SourceRecord[K] }> = [];
    let bytes = 0;
    for (const { letter } of entries) {
      const data = Buffer.from(letter.data, 'base64');
      bytes += data.length;
      records.push({
        data,
        partitionKey: letter.partitionKey,
        shardId: letter.shardId,
        sequenceNumber: letter.sequenceNumber,
        subSequenceNumber: letter.subSequenceNumber,
        approximateArrivalTimestamp: letter.arrivalTimestamp,
        segment: undefined as unknown as Segment,
        ...(entry === 'after-transform' && letter.partitionKeys ? { partitionKeys: letter.partitionKeys } : {}),
      });
    }
    const segment = this.progress.open(String(++this.pages), records.length, bytes);
    this.entriesOf.set(segment, entries);
    for (const record of records) record.segment = segment;
    this.counts.read += records.length;
    this.counts.bytes += bytes;
    sink.accept(records, entry);
  }

  segmentReleased(segment: Segment): void {
    const entries = this.entriesOf.get(segment)!;
    this.entriesOf.delete(segment);
    const removal = this.dlq
      .remove(entries, { unchanged: true })
      .then((removed) => {
        this.counts.removed += removed;
        this.counts.keptInQueue += entries.length - removed;
      })
      .catch((err: unknown) => {
        // The records reached an end; their entries stay and a later redrive delivers them again.
        this.removalFailed = true;
        this.log.error('removing redriven entries from the dead-letter queue failed; a later redrive delivers them again', { entries: entries.length, error: err });
      })
      .finally(() => this.removals.delete(removal));
    this.removals.add(removal);
  }

  progressed(): void {}

  stop(): void {
    this.stopping.abort();
  }

  async close(): Promise<boolean> {
    while (this.removals.size > 0) await Promise.all(this.removals);
    return !this.removalFailed;
  }
}
