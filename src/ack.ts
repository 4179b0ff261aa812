/**
 * The acknowledgement model — the spine every source, buffer, transform and destination plugs into.
 *
 * - A source hands out a shard's records in Segments: one read's worth, in order. Each record points
 *   at its segment; that pointer is the record's source position.
 * - Whatever holds records downstream (a buffer, a batch being delivered) holds Acknowledgements:
 *   per segment, how many of its records it holds — ranges, not a list per record.
 * - When a batch reaches an end — delivered, written to the error output, put in the DLQ, or its
 *   records were dropped on purpose — its Acknowledgements are released.
 * - A ShardProgress keeps its segments in read order. Its checkpoint is the last sequence number of
 *   the longest prefix of fully released segments: the highest position such that it and every
 *   position before it have reached an end. Nothing later can move it backwards.
 */
export class Segment {
  pending: number;

  constructor(
    /** Undefined for a detached segment: copies whose end no checkpoint waits for (backup copies). */
    readonly shard: ShardProgress | undefined,
    readonly lastSequenceNumber: string,
    readonly records: number,
    readonly bytes: number,
  ) {
    this.pending = records;
  }

  /** A segment no shard waits for: records that are copies of records whose end is elsewhere. */
  static detached(records: number): Segment {
    return new Segment(undefined, '', records, 0);
  }

  /**
   * `count` more holders of this segment's records (copies that must also reach an end, such as
   * source record backups) before it counts as released. Only while its records are being handed on.
   */
  hold(count: number): void {
    if (this.pending === 0) throw new Error('holding a segment that was already released');
    this.pending += count;
  }

  release(count: number): void {
    if (this.shard) this.shard.release(this, count);
    else if (count > this.pending) throw new Error(`released ${count} records of a detached segment with ${this.pending} pending`);
    else this.pending -= count;
  }
}

export interface ProgressListener {
  /** Every record of the segment reached an end (in any order relative to other segments). */
  segmentReleased(segment: Segment): void;
  /** The shard's checkpoint moved, or the shard became complete. */
  progressed(shard: ShardProgress): void;
}

export class ShardProgress {
  private queue: Segment[] = [];
  private head = 0;
  private checkpointSequence: string | undefined;
  private readToEnd = false;

  constructor(
    readonly shardId: string,
    startingCheckpoint: string | undefined,
    private readonly listener: ProgressListener,
  ) {
    this.checkpointSequence = startingCheckpoint;
  }

  /** Highest sequence number such that it and everything before it reached an end. */
  get checkpoint(): string | undefined {
    return this.checkpointSequence;
  }

  /** The shard was read to its end (closed by resharding) and every record reached an end. */
  get complete(): boolean {
    return this.readToEnd && this.head === this.queue.length;
  }

  /** Every record of the shard has been handed on (they may still be in a buffer). */
  get isReadToEnd(): boolean {
    return this.readToEnd;
  }

  get outstandingSegments(): number {
    return this.queue.length - this.head;
  }

  /** Records handed on that have not reached an end. */
  get outstandingRecords(): number {
    let n = 0;
    for (let i = this.head; i < this.queue.length; i++) n += this.queue[i]!.pending;
    return n;
  }

  open(lastSequenceNumber: string, records: number, bytes: number): Segment {
    if (this.readToEnd) throw new Error(`shard ${this.shardId} was already read to its end`);
    const segment = new Segment(this, lastSequenceNumber, records, bytes);
    this.queue.push(segment);
    // A read whose records all vanished (an aggregate holding no user records) is at its end already.
    if (records === 0) this.advance();
    return segment;
  }

  release(segment: Segment, count: number): void {
    if (segment.shard !== this) throw new Error('segment released on the wrong shard');
    if (count > segment.pending) {
      throw new Error(
        `shard ${this.shardId}: released ${count} records of a segment with ${segment.pending} pending (double release)`,
      );
    }
    segment.pending -= count;
    if (segment.pending > 0) return;
    this.listener.segmentReleased(segment);
    this.advance();
  }

  markReadToEnd(): void {
    this.readToEnd = true;
    if (this.complete) this.listener.progressed(this);
  }

  private advance(): void {
    let moved = false;
    while (this.head < this.queue.length && this.queue[this.head]!.pending === 0) {
      this.checkpointSequence = this.queue[this.head]!.lastSequenceNumber;
      this.head++;
      moved = true;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (moved) this.listener.progressed(this);
  }
}

/** The source positions a buffer or batch holds, as counts per segment. */
export class Acknowledgements {
  private readonly counts = new Map<Segment, number>();
  // Records arrive in runs from the same segment: count the run, touch the map once per run.
  private run: Segment | undefined;
  private runLength = 0;
  private released = false;
  private total = 0;

  add(segment: Segment, count = 1): void {
    if (this.released) throw new Error('acknowledgements already released');
    if (segment !== this.run) {
      this.closeRun();
      this.run = segment;
    }
    this.runLength += count;
    this.total += count;
  }

  get records(): number {
    return this.total;
  }

  /** Hands one record's position over to whatever now holds it (the error output). */
  remove(segment: Segment): void {
    if (this.released) throw new Error('acknowledgements already released');
    this.closeRun();
    const count = this.counts.get(segment);
    if (!count) throw new Error('removing a position these acknowledgements do not hold');
    if (count === 1) this.counts.delete(segment);
    else this.counts.set(segment, count - 1);
    this.total--;
  }

  /** Hands every held position back to its shard: the records reached an end. */
  release(): void {
    if (this.released) throw new Error('acknowledgements already released');
    this.closeRun();
    this.released = true;
    for (const [segment, count] of this.counts) segment.release(count);
    this.counts.clear();
  }

  private closeRun(): void {
    if (this.run) this.counts.set(this.run, (this.counts.get(this.run) ?? 0) + this.runLength);
    this.run = undefined;
    this.runLength = 0;
  }
}
