import { codecs, type Encoding } from './codecs.js';
import type { SourceRecord } from './records.js';
import { MiB } from './units.js';

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
  ) {
    this.chunks = new ChunkedEncoder(encoding, chunkBytes, onChunkEncoded);
  }

  append(record: SourceRecord): void {
    this.chunks.write(record.data);
    if (this.appendNewline) this.chunks.write(NEWLINE);
  }

  finish(): Promise<Buffer[]> {
    return this.chunks.finish();
  }
}

export const DEFAULT_CHUNK_BYTES = 4 * MiB;

/**
 * Encodes a buffer's records while they arrive. Bytes are copied once into a fixed chunk; a full
 * chunk goes to the codec (async zlib on the libuv pool) at once, so both cores compress while
 * reading goes on and a flush waits for one chunk at most. Each chunk becomes one gzip member:
 * concatenated members are one valid gzip stream that gunzip, zcat, Node, Python and Athena read
 * whole. Memory holds encoded output plus one raw chunk per buffer.
 */
export class ChunkedEncoder {
  private chunk: Buffer;
  private used = 0;
  private readonly parts: Promise<Buffer>[] = [];
  private finished = false;
  private readonly encodeChunk: (raw: Buffer) => Promise<Buffer>;

  constructor(
    encoding: Encoding,
    private readonly chunkBytes: number = DEFAULT_CHUNK_BYTES,
    /** Told when a chunk is encoded: memory then holds its encoded bytes instead of its raw ones. */
    private readonly onChunkEncoded?: (rawBytes: number, encodedBytes: number) => void,
  ) {
    const encode = codecs[encoding].encodeChunk;
    if (!encode) throw new Error(`${encoding} is not a chunked encoding`);
    this.encodeChunk = encode;
    this.chunk = Buffer.allocUnsafe(chunkBytes);
  }

  write(data: Uint8Array): void {
    if (this.finished) throw new Error('encoder already finished');
    let offset = 0;
    while (offset < data.length) {
      const n = Math.min(data.length - offset, this.chunkBytes - this.used);
      this.chunk.set(n === data.length ? data : data.subarray(offset, offset + n), this.used);
      this.used += n;
      offset += n;
      if (this.used === this.chunkBytes) this.submit(true);
    }
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
    if (this.onChunkEncoded) part.then((encoded) => this.onChunkEncoded!(rawBytes, encoded.length), () => undefined);
    // Rejections are reported by finish(); this keeps an early one from being "unhandled".
    part.catch(() => undefined);
    this.parts.push(part);
    this.used = 0;
    if (more) this.chunk = Buffer.allocUnsafe(this.chunkBytes);
  }
}
