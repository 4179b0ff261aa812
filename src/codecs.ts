import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { gzip, constants as zlibConstants } from 'node:zlib';

/** How an object's or a request body's bytes are encoded. Every writer names and labels bytes from this one table. */
export type Encoding = 'UNCOMPRESSED' | 'GZIP' | 'PARQUET';

export interface Codec {
  /** Appended to S3 object keys (unless the configuration names its own extension). */
  readonly extension: string;
  readonly contentType: string;
  /** The HTTP Content-Encoding of a request body encoded this way; none when the bytes are the content. */
  readonly contentEncoding?: string;
  /**
   * Encodes one chunk of raw bytes, off the event loop. Chunks of a chunked codec concatenate into
   * one valid stream (gzip members, RFC 1952 §2.2). Absent: the codec encodes whole files elsewhere
   * (Parquet, in the conversion threads).
   */
  readonly encodeChunk?: (raw: Buffer) => Promise<Buffer>;
  /** encodeChunk's output is new bytes: its input may be reused once it resolves. */
  readonly encodeChunkCopies?: boolean;
}

/** The most raw bytes the encoder hands a chunked codec at once (a full chunk; one compression slot). */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

const gzipAsync = promisify(gzip);
/**
 * About one output piece per chunk of JSON (≈ 1 MiB out of 4 MiB in): node:zlib's 16 KiB default
 * returns to the event loop for every piece, and while the loop is busy reading, the pool waits.
 * Sized to the chunk, so a partition's small chunk does not allocate a whole MiB.
 */
const gzipOptions = (raw: Buffer) => ({ level: zlibConstants.Z_DEFAULT_COMPRESSION, chunkSize: Math.max(16 * 1024, Math.min(1 << 20, 2 ** Math.ceil(Math.log2(raw.length / 3 + 1)))) });

/**
 * About a full chunk per core is being compressed; the others wait their turn in order. Without a
 * bound, every chunk submitted while catching up (76 at once, measured) was compressed at the same
 * time, piece by piece: each held its raw bytes and its output until all were nearly done, and 76
 * deflate states thrashed the caches. The bound is in bytes, as many full chunks as `slots`: small
 * chunks (a partition's, 128 KiB: 3 ms of work) are let through several to a slot, queued in the
 * thread pool itself, so a core that finishes one starts the next without waiting for the event
 * loop to hand it over — three small ones at a time left the cores idle while the loop routed a
 * read (200 partitions ran at 0.58–0.67× one stream).
 */
export class CompressionQueue {
  private running = 0;
  private runningBytes = 0;
  private readonly waiting: Array<{ bytes: number; start: () => void }> = [];

  constructor(
    private readonly slots: number,
    private readonly slotBytes: number,
    /** At most this many at once, however small (each holds a deflate state of about 270 KiB). */
    private readonly maxRunning: number,
  ) {}

  async run<T>(bytes: number, work: () => Promise<T>): Promise<T> {
    if (this.waiting.length > 0 || !this.admits(bytes)) await new Promise<void>((start) => this.waiting.push({ bytes, start }));
    else this.take(bytes);
    try {
      return await work();
    } finally {
      this.running--;
      this.runningBytes -= bytes;
      // Counted as they are admitted, not when they resume: the next is admitted on true figures.
      while (this.waiting.length > 0 && this.admits(this.waiting[0]!.bytes)) {
        const next = this.waiting.shift()!;
        this.take(next.bytes);
        next.start();
      }
    }
  }

  private take(bytes: number): void {
    this.running++;
    this.runningBytes += bytes;
  }

  private admits(bytes: number): boolean {
    if (this.running === 0) return true;
    return this.running < this.maxRunning && this.runningBytes + bytes <= this.slots * this.slotBytes;
  }
}

// Full chunks: one more than the cores, so that the pool never waits for a busy event loop to hand
// it the next; and one of libuv's threads (4 unless UV_THREADPOOL_SIZE says otherwise) left for DNS
// lookups and file reads. (Small chunks queued in the pool may hold that thread for a few ms each.)
const poolThreads = Number(process.env.UV_THREADPOOL_SIZE) || 4;
const compression = new CompressionQueue(Math.max(1, Math.min(availableParallelism() + 1, poolThreads - 1)), DEFAULT_CHUNK_BYTES, 16);

export const codecs: Readonly<Record<Encoding, Codec>> = {
  UNCOMPRESSED: { extension: '', contentType: 'application/octet-stream', encodeChunk: (raw) => Promise.resolve(raw) },
  GZIP: { extension: '.gz', contentType: 'application/gzip', contentEncoding: 'gzip', encodeChunk: (raw) => compression.run(raw.length, () => gzipAsync(raw, gzipOptions(raw))), encodeChunkCopies: true },
  PARQUET: { extension: '.parquet', contentType: 'application/vnd.apache.parquet' },
};
