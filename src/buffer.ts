import { createHash, randomUUID } from 'node:crypto';
import { ManifestBuilder } from './archive/manifest.js';
import { Acknowledgements } from './ack.js';
import type { ByteBudget } from './budget.js';
import type { Clock, TimerHandle } from './clock.js';
import type { BufferSettings } from './pipeline-settings.js';
import { DEFAULT_CHUNK_BYTES, type Encoding } from './codecs.js';
import { BytesEncoder, type Encoder } from './encoder.js';
import type { BatchRange, FlushReason, SourceRecord } from './records.js';

export type { FlushReason };

/** Makes the encoder of one buffer fill; it may move positions out of `acks` (conversion failures). */
/** `manifest`: the buffer's manifest, for an encoder that drops records (conversion failures) to take them out of it. */
export type EncoderFactory = (acks: Acknowledgements, holding: Holding, manifest: ManifestBuilder | undefined) => Encoder;

/**
 * The budget bytes one buffer fill holds: its records' bytes as they arrive (taken by whoever
 * handed them on), then — as chunks are compressed — the compressed bytes in their place. The
 * sealed batch carries it; its end gives everything back.
 */
export class Holding {
  private held = 0;

  constructor(private readonly budget: ByteBudget | undefined) {}

  get bytes(): number {
    return this.held;
  }

  /** Bytes already taken from the budget, held here from now on. */
  adopt(bytes: number): void {
    this.held += bytes;
  }

  /** New bytes (a delimiter), taken from the budget. */
  take(bytes: number): void {
    this.budget?.take(bytes);
    this.held += bytes;
  }

  /** A chunk of `raw` bytes was handed to the compressor. */
  encoding(raw: number): void {
    this.budget?.compressing(raw);
  }

  /** A chunk handed to the compressor is compressed: memory holds `encoded` bytes in its place. */
  encoded(raw: number, encoded: number): void {
    this.budget?.compressed(raw);
    this.budget?.resize(raw, encoded);
    this.held += encoded - raw;
  }

  /** The batch reached its end: memory lets go of everything it held. */
  release(): void {
    this.budget?.give(this.held);
    this.held = 0;
  }
}


/** Where a buffer's objects go: its partition, or the error output of one type. */
export interface BufferTags {
  readonly partitionKeys?: Readonly<Record<string, string>>;
  readonly errorOutputType?: string;
  /** A source record backup's copies (S3BackupMode Enabled). */
  readonly sourceBackup?: true;
}

/** A buffer's contents once sealed: the positions it holds and its body, being encoded. */
export interface SealedBatch {
  readonly id: string;
  readonly reason: FlushReason;
  readonly records: number;
  readonly rawBytes: number;
  readonly encoding: Encoding;
  readonly oldestArrivalTimestamp: number;
  readonly acks: Acknowledgements;
  /** The budget its contents hold, given back at its end. */
  readonly holding: Holding;
  readonly body: Promise<Buffer[]>;
  readonly tags: BufferTags;
  /** The records themselves, when the encoder keeps them (record-oriented destinations). */
  readonly heldRecords?: readonly SourceRecord[];
  /** Per-shard buffers (exactly-once): the exact positions of its first and last record. */
  readonly range?: BatchRange;
  /** Its records, field by field, for the object's manifest (settings.manifest). */
  readonly manifest?: ManifestBuilder;
}



/**
 * Firehose's buffering rule: a buffer is sealed when its bytes (before compression) reach the size
 * hint or its first record has waited the interval — whichever comes first — and at shutdown.
 * A record that would push the buffer past the size hint seals it first, so objects stay within
 * the hint (a record larger than the hint travels alone).
 */
export class RecordBuffer {
  private encoder: Encoder | undefined;
  private acks = new Acknowledgements();
  private holding: Holding;
  private records = 0;
  private rawBytes = 0;
  private oldestArrivalTime = Infinity;
  private first: Mark | undefined;
  private last: Mark | undefined;
  private manifest: ManifestBuilder | undefined;
  /** With positionalIds: the batch's first and last record, which its id is derived from. */
  private idFirst: Mark | undefined;
  private idLast: Mark | undefined;
  private timer: TimerHandle | undefined;
  private readonly delimiterBytes: number;
  private readonly createEncoder: EncoderFactory;

  constructor(
    private readonly settings: BufferSettings,
    private readonly clock: Clock,
    private readonly onSeal: (batch: SealedBatch) => void,
    private readonly tags: BufferTags = {},
    createEncoder?: EncoderFactory,
    private readonly budget?: ByteBudget,
    chunkTarget?: () => number,
    /** Counts the fills open across a set of buffers. */
    private readonly fills?: { open: number },
  ) {
    const chunkBytes = Math.min(DEFAULT_CHUNK_BYTES, settings.sizeBytes);
    this.delimiterBytes = settings.appendNewlineDelimiter ? 1 : 0;
    this.createEncoder =
      createEncoder ??
      ((_acks, holding) =>
        new BytesEncoder(
          settings.encoding,
          chunkBytes,
          settings.appendNewlineDelimiter,
          (raw, encoded) => holding.encoded(raw, encoded),
          (raw) => holding.encoding(raw),
          chunkTarget,
        ));
    this.holding = new Holding(budget);
  }

  get bufferedRecords(): number {
    return this.records;
  }

  /**
   * Exactly-once re-formation: while held, only the re-formation's own cut (or shutdown) seals the
   * buffer, so the re-formed batch ends exactly where its intent does.
   */
  held = false;

  /** Budget bytes the open fill holds. */
  get heldBytes(): number {
    return this.holding.bytes;
  }

  append(record: SourceRecord): void {
    const size = record.data.length + this.delimiterBytes;
    // Per shard, a size cut falls only where a Kinesis record begins: a batch ends on a whole sequence number.
    const mayCut = !this.settings.perShard || record.subSequenceNumber === 0;
    if (this.records > 0 && this.rawBytes + size > this.settings.sizeBytes && mayCut) this.seal('size');
    if (this.records === 0) this.open();
    if (this.settings.perShard) {
      this.first ??= new Mark(record);
      (this.last ??= new Mark(record)).set(record);
    }
    this.acks.add(record.segment);
    if (this.manifest) {
      this.manifest.add(record);
      // Its columns grow by doubling: looked at every 256 records, they are counted to within a few KiB.
      if ((this.records & 255) === 0) this.countManifest();
    }
    if (this.settings.positionalIds) {
      this.idFirst ??= new Mark(record);
      (this.idLast ??= new Mark(record)).set(record);
    }
    this.holding.adopt(record.data.length);
    if (this.delimiterBytes) this.holding.take(this.delimiterBytes);
    this.encoder!.append(record);
    this.records++;
    this.rawBytes += size;
    if (record.approximateArrivalTimestamp < this.oldestArrivalTime) this.oldestArrivalTime = record.approximateArrivalTimestamp;
    if (!this.settings.perShard && (this.rawBytes >= this.settings.sizeBytes || this.records === this.settings.maxRecords)) this.seal('size');
  }

  /** Budget bytes the open fill's manifest holds (its columns, 30 bytes or so a record) beyond what was counted. */
  private countManifest(): void {
    const more = this.manifest!.memoryBytes - this.manifestCounted;
    if (more <= 0) return;
    this.holding.take(more);
    this.manifestCounted += more;
  }

  private manifestCounted = 0;

  /** The oldest arrival time among the records buffered (Infinity when empty). */
  get oldestArrival(): number {
    return this.records > 0 ? this.oldestArrivalTime : Infinity;
  }

  /** When the first record now buffered arrived (Infinity when empty). */
  get openedAt(): number {
    return this.records > 0 ? this.opened : Infinity;
  }

  /** Seals whatever is buffered (shutdown); does nothing when empty. */
  flush(reason: FlushReason = 'shutdown'): void {
    if (this.records > 0) this.seal(reason);
  }

  private opened = 0;

  private open(): void {
    if (this.fills) this.fills.open++;
    this.opened = this.clock.now();
    if (this.settings.manifest) this.manifest = new ManifestBuilder();
    this.encoder = this.createEncoder(this.acks, this.holding, this.manifest);
    this.timer = this.clock.setTimeout(() => this.seal('interval'), this.settings.intervalMs);
  }

  private seal(reason: FlushReason): void {
    if (this.held && reason !== 're-formation' && reason !== 'shutdown') return;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    if (this.fills) this.fills.open--;
    if (this.manifest) this.countManifest();
    const batch: SealedBatch = {
      id: this.idFirst && this.idLast ? positionalId(this.idFirst, this.idLast, this.records, this.tags) : randomUUID(),
      reason,
      records: this.records,
      rawBytes: this.rawBytes,
      encoding: this.settings.encoding,
      oldestArrivalTimestamp: this.oldestArrivalTime,
      acks: this.acks,
      holding: this.holding,
      body: this.encoder!.finish(),
      tags: this.tags,
      ...(this.encoder!.records ? { heldRecords: this.encoder!.records } : {}),
      ...(this.manifest ? { manifest: this.manifest } : {}),
      ...(this.first && this.last
        ? {
            range: {
              shardId: this.first.shardId,
              first: { sequenceNumber: this.first.sequenceNumber, subSequenceNumber: this.first.subSequenceNumber, arrival: this.first.approximateArrivalTimestamp },
              last: { sequenceNumber: this.last.sequenceNumber, subSequenceNumber: this.last.subSequenceNumber },
              progress: this.first.shard,
            },
          }
        : {}),
    };
    this.first = undefined;
    this.last = undefined;
    this.manifest = undefined;
    this.manifestCounted = 0;
    this.idFirst = undefined;
    this.idLast = undefined;
    this.encoder = undefined;
    this.acks = new Acknowledgements();
    this.holding = new Holding(this.budget);
    this.records = 0;
    this.rawBytes = 0;
    this.oldestArrivalTime = Infinity;
    this.onSeal(batch);
  }
}

/**
 * A record's position, kept apart from the record: a record kept to its buffer's seal would keep
 * alive the whole response its bytes are a view of (10 MB), long after they were copied on.
 */
class Mark {
  shardId!: string;
  sequenceNumber!: string;
  subSequenceNumber!: number;
  approximateArrivalTimestamp!: number;
  shard: SourceRecord['segment']['shard'];

  constructor(record: SourceRecord) {
    this.set(record);
  }

  set(record: SourceRecord): void {
    this.shardId = record.shardId;
    this.sequenceNumber = record.sequenceNumber;
    this.subSequenceNumber = record.subSequenceNumber;
    this.approximateArrivalTimestamp = record.approximateArrivalTimestamp;
    this.shard = record.segment.shard;
  }
}

/** A UUID-shaped id from a batch's first and last positions and size: the same records, the same id. */
function positionalId(first: Mark, last: Mark, records: number, tags: BufferTags): string {
  const hex = createHash('sha256')
    .update(`${first.shardId}/${first.sequenceNumber}/${first.subSequenceNumber}|${last.shardId}/${last.sequenceNumber}/${last.subSequenceNumber}|${records}|${tags.errorOutputType ?? ''}|${JSON.stringify(tags.partitionKeys ?? {})}`)
    .digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const MIN_CHUNK_TARGET = 128 * 1024;

/**
 * One buffer per partition (or per error-output type), created on first use. The number of
 * partitions holding records is bounded (Firehose: 500 active partitions): opening one more seals
 * the longest-open partition first — its records are delivered early, never dropped.
 */
export class BufferSet {
  private readonly buffers = new Map<string, RecordBuffer>();
  /** Buffers holding records now. */
  private readonly fills = { open: 0 };
  private readonly chunkTarget: (() => number) | undefined;

  constructor(
    private readonly settings: BufferSettings,
    private readonly clock: Clock,
    private readonly maxActive: number,
    private readonly onSeal: (batch: SealedBatch) => void,
    private readonly onPartitionLimit: () => void = () => undefined,
    private readonly createEncoder?: EncoderFactory,
    private readonly budget?: ByteBudget,
  ) {
    // Many partitions filling at once: each hands its chunk on at its share of an eighth of the
    // budget, so bytes are compressed as they come, not all at once when pressure seals them.
    const budgetBytes = budget?.limit;
    this.chunkTarget = maxActive > 1 && budgetBytes !== undefined && budgetBytes < Number.MAX_SAFE_INTEGER ? () => Math.max(MIN_CHUNK_TARGET, Math.floor(budgetBytes / 8 / Math.max(1, this.fills.open))) : undefined;
  }

  /** Records held by all partitions. */
  get buffered(): number {
    let n = 0;
    for (const b of this.buffers.values()) n += b.bufferedRecords;
    return n;
  }

  /** Budget bytes held by open buffers. */
  get heldBytes(): number {
    let n = 0;
    for (const b of this.buffers.values()) n += b.heldBytes;
    return n;
  }

  /** The oldest arrival time among every buffered record (Infinity when none). */
  get oldestArrival(): number {
    let oldest = Infinity;
    for (const b of this.buffers.values()) if (b.oldestArrival < oldest) oldest = b.oldestArrival;
    return oldest;
  }

  get active(): number {
    let n = 0;
    for (const b of this.buffers.values()) if (b.bufferedRecords > 0) n++;
    return n;
  }

  append(key: string, tags: BufferTags, record: SourceRecord): void {
    let buffer = this.buffers.get(key);
    if (!buffer) {
      if (this.buffers.size >= this.maxActive) this.makeRoom();
      buffer = new RecordBuffer(this.settings, this.clock, this.onSeal, tags, this.createEncoder, this.budget, this.chunkTarget, this.fills);
      buffer.held = this.heldKeys.has(key);
      this.buffers.set(key, buffer);
    }
    buffer.append(record);
  }

  private readonly heldKeys = new Set<string>();

  /** Holds (or lets go) one partition's buffer against every seal but re-formation's and shutdown's. */
  hold(key: string, held: boolean): void {
    if (held) this.heldKeys.add(key);
    else this.heldKeys.delete(key);
    const buffer = this.buffers.get(key);
    if (buffer) buffer.held = held;
  }

  flushAll(reason: FlushReason): void {
    for (const buffer of this.buffers.values()) buffer.flush(reason);
  }

  /** Seals one partition's buffer now. */
  flushKey(key: string, reason: FlushReason): void {
    this.buffers.get(key)?.flush(reason);
  }

  private makeRoom(): void {
    // Forget partitions whose buffers are empty; if all hold records, seal the longest-open one.
    for (const [key, buffer] of this.buffers) if (buffer.bufferedRecords === 0) this.buffers.delete(key);
    if (this.buffers.size < this.maxActive) return;
    let oldestKey: string | undefined;
    let oldest = Infinity;
    for (const [key, buffer] of this.buffers) {
      if (buffer.openedAt < oldest) {
        oldest = buffer.openedAt;
        oldestKey = key;
      }
    }
    this.onPartitionLimit();
    this.buffers.get(oldestKey!)!.flush('partition-limit');
    this.buffers.delete(oldestKey!);
  }
}
