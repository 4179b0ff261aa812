import { codecs, DEFAULT_CHUNK_BYTES, type Encoding } from './codecs.js';
import type { SourceRecord } from './records.js';

/** Turns a buffer's records into an object's bytes, as they arrive. */
export interface Encoder {
  append(record: SourceRecord): void;
  /** The object's bytes, in order; resolves once everything appended is encoded. */
  finish(): Promise<Buffer[]>;
  /** Record-oriented encoders keep the records themselves. */
  readonly records?: readonly SourceRecord[];
}

/** Keeps the records as they are, for destinations that send records, not objects. */
export class RecordListEncoder implements Encoder {
  readonly records: SourceRecord[] = [];

  append(record: SourceRecord): void {
    this.records.push(record);
  }

  finish(): Promise<Buffer[]> {
    return Promise.resolve([]);
  }
}

const NEWLINE = Buffer.from('\n');

/** Records as they are (optionally newline-delimited), encoded by a chunked codec. */
export class BytesEncoder implements Encoder {
  private readonly chunks: ChunkedEncoder;

  constructor(
    encoding: Encoding,
    chunkBytes: number,
    private readonly appendNewline: boolean,
    onChunkEncoded?: (rawBytes: number, encodedBytes: number) => void,
    onChunkSubmitted?: (rawBytes: number) => void,
    chunkTarget?: () => number,
  ) {
    this.chunks = new ChunkedEncoder(encoding, chunkBytes, onChunkEncoded, onChunkSubmitted, chunkTarget);
  }

  append(record: SourceRecord): void {
    this.chunks.write(record.data);
    if (this.appendNewline) this.chunks.write(NEWLINE);
  }

  finish(): Promise<Buffer[]> {
    return this.chunks.finish();
  }
}

/** A buffer's first chunk: a partition with a few records holds kilobytes, not a whole chunk. */
const FIRST_CHUNK_BYTES = 64 * 1024;

/**
 * Full-size chunks whose bytes were compressed, kept for the next ones: a chunk lives for seconds,
 * long enough to outlive the young generation, so without reuse each one was garbage only a full
 * collection returns (4 MiB for every 4 MiB read, piling up between collections).
 */
const spareChunks: Buffer[] = [];
const MAX_SPARE_CHUNKS = 2;

function fullChunk(): Buffer {
  return spareChunks.pop() ?? Buffer.allocUnsafeSlow(DEFAULT_CHUNK_BYTES);
}

function recycle(chunk: Buffer): void {
  if (chunk.length === DEFAULT_CHUNK_BYTES && chunk.byteOffset === 0 && spareChunks.length < MAX_SPARE_CHUNKS) spareChunks.push(chunk);
}

/**
 * Encodes a buffer's records while they arrive. Bytes are copied once into a fixed chunk; a full
 * chunk goes to the codec (async zlib on the libuv pool) at once, so both cores compress while
 * reading goes on and a flush waits for one chunk at most. Each chunk becomes one gzip member:
 * concatenated members are one valid gzip stream that gunzip, zcat, Node, Python and Athena read
 * whole. Memory holds encoded output plus one raw chunk per buffer; a buffer's first chunk starts
 * small and doubles as it fills, so hundreds of partitions with a few records each hold little.
 */
export class ChunkedEncoder {
  private chunk: Buffer;
  private used = 0;
  private readonly parts: Promise<Buffer>[] = [];
  private finished = false;
  private readonly encodeChunk: (raw: Buffer) => Promise<Buffer>;
  /** The codec's output is new bytes, so a chunk can be reused once it is encoded. */
  private readonly recyclable: boolean;

  constructor(
    encoding: Encoding,
    private readonly chunkBytes: number = DEFAULT_CHUNK_BYTES,
    /** Told when a chunk is encoded: memory then holds its encoded bytes instead of its raw ones. */
    private readonly onChunkEncoded?: (rawBytes: number, encodedBytes: number) => void,
    /** Told when a chunk is handed to the codec, before it is encoded. */
    private readonly onChunkSubmitted?: (rawBytes: number) => void,
    /**
     * The size a chunk is handed on at now (at most chunkBytes): smaller while many partitions fill
     * at once, so that their bytes are compressed as they come instead of all at the seal.
     */
    private readonly chunkTarget?: () => number,
  ) {
    const encode = codecs[encoding].encodeChunk;
    if (!encode) throw new Error(`${encoding} is not a chunked encoding`);
    this.encodeChunk = encode;
    this.chunk = Buffer.allocUnsafe(Math.min(FIRST_CHUNK_BYTES, chunkBytes));
    this.recyclable = codecs[encoding].encodeChunkCopies === true;
  }

  write(data: Uint8Array): void {
    if (this.finished) throw new Error('encoder already finished');
    const target = this.chunkTarget ? Math.min(this.chunkBytes, this.chunkTarget()) : this.chunkBytes;
    if (this.used >= target) this.submit(true); // the target came down since the last write
    let offset = 0;
    while (offset < data.length) {
      if (this.used === this.chunk.length) this.grow(data.length - offset, target);
      const n = Math.min(data.length - offset, this.chunk.length - this.used, target - this.used);
      this.chunk.set(n === data.length ? data : data.subarray(offset, offset + n), this.used);
      this.used += n;
      offset += n;
      if (this.used >= target) this.submit(true);
    }
  }

  /** A chunk full before its target size: twice as large (or enough for what comes), copied once. */
  private grow(needed: number, target: number): void {
    const size = Math.min(target, Math.max(this.chunk.length * 2, this.used + needed));
    const bigger = size === DEFAULT_CHUNK_BYTES ? fullChunk() : Buffer.allocUnsafe(size);
    this.chunk.copy(bigger, 0, 0, this.used);
    this.chunk = bigger;
  }

  /** The encoded chunks in order; the last partial chunk is encoded now. */
  finish(): Promise<Buffer[]> {
    if (this.finished) throw new Error('encoder already finished');
    this.finished = true;
    if (this.used > 0) this.submit(false);
    return Promise.all(this.parts);
  }

  private submit(more: boolean): void {
    const input = this.used === this.chunkBytes ? this.chunk : this.chunk.subarray(0, this.used);
    const part = this.encodeChunk(input);
    const rawBytes = input.length;
    const chunk = this.chunk;
    this.onChunkSubmitted?.(rawBytes);
    part.then(
      (encoded) => {
        if (this.recyclable) recycle(chunk);
        this.onChunkEncoded?.(rawBytes, encoded.length);
      },
      // Not compressed after all: memory still holds the raw bytes, but the compressor is done with them.
      () => this.onChunkEncoded?.(rawBytes, rawBytes),
    );
    // Rejections are reported by finish(); this keeps an early one from being "unhandled".
    part.catch(() => undefined);
    this.parts.push(part);
    // The next chunk: full size at once when the last one was, else grown again as it fills.
    if (more) this.chunk = this.used === DEFAULT_CHUNK_BYTES ? fullChunk() : Buffer.allocUnsafe(Math.min(this.used, this.chunkBytes));
    this.used = 0;
  }
}
