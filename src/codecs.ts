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
}

const gzipAsync = promisify(gzip);
const GZIP_LEVEL = zlibConstants.Z_DEFAULT_COMPRESSION;

export const codecs: Readonly<Record<Encoding, Codec>> = {
  UNCOMPRESSED: { extension: '', contentType: 'application/octet-stream', encodeChunk: (raw) => Promise.resolve(raw) },
  GZIP: { extension: '.gz', contentType: 'application/gzip', contentEncoding: 'gzip', encodeChunk: (raw) => gzipAsync(raw, { level: GZIP_LEVEL }) },
  PARQUET: { extension: '.parquet', contentType: 'application/vnd.apache.parquet' },
};
