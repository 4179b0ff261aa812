import type { KinesisClient } from '@aws-sdk/client-kinesis';

/**
 * A GetRecords response, its records as columns (one array per field, not an object per record):
 * record i is data[i], partitionKeys[i], sequenceNumbers[i], arrivals[i]. Every record's bytes
 * are views of one buffer for the whole response.
 */
export interface DecodedGetRecords {
  readonly data: Buffer[];
  readonly partitionKeys: string[];
  readonly sequenceNumbers: string[];
  /** ApproximateArrivalTimestamp, epoch ms. */
  readonly arrivals: number[];
  readonly nextShardIterator: string | undefined;
  readonly millisBehindLatest: number | undefined;
  /** Every record's bytes together (what memory holds of the response). */
  readonly dataBytes: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

export class MalformedResponse extends Error {}

/**
 * Decodes a GetRecords response straight from its bytes. The SDK's generic deserializer costs more
 * CPU than gzip does (a regex over every Data field, a schema walk, a JS string per field); here
 * every record's Data is base64-decoded from the body into one buffer for the whole response, and
 * the only allocations per record are its Buffer view, its partition key and sequence number.
 */
export function decodeGetRecords(body: Buffer): DecodedGetRecords {
  const scan = new Scanner(body);
  // Base64 is 4 bytes for 3: the decoded records fit in 3/4 of the body.
  const out = Buffer.allocUnsafeSlow(Math.ceil((body.length * 3) / 4));
  const records: RecordColumns = { out, used: 0, data: [], partitionKeys: [], sequenceNumbers: [], arrivals: [] };
  let nextShardIterator: string | undefined;
  let millisBehindLatest: number | undefined;
  scan.expect(0x7b);
  scan.members((key) => {
    if (key === 'Records') readRecords(scan, body, records);
    else if (key === 'NextShardIterator') nextShardIterator = scan.nullableString();
    else if (key === 'MillisBehindLatest') millisBehindLatest = scan.number();
    else scan.skip();
  });
  const { data, partitionKeys, sequenceNumbers, arrivals, used } = records;
  return { data, partitionKeys, sequenceNumbers, arrivals, nextShardIterator, millisBehindLatest, dataBytes: used };
}

interface RecordColumns {
  readonly out: Buffer;
  used: number;
  readonly data: Buffer[];
  readonly partitionKeys: string[];
  readonly sequenceNumbers: string[];
  readonly arrivals: number[];
}

const DATA = 1;
const PARTITION_KEY = 2;
const SEQUENCE_NUMBER = 3;
const ARRIVAL = 4;
const RECORD_KEYS: ReadonlyArray<readonly [Uint8Array, number]> = [
  [Buffer.from('Data'), DATA],
  [Buffer.from('PartitionKey'), PARTITION_KEY],
  [Buffer.from('SequenceNumber'), SEQUENCE_NUMBER],
  [Buffer.from('ApproximateArrivalTimestamp'), ARRIVAL],
];

/** Which of a record's fields the key at [start, end) names (0: one not read), matched by its bytes. */
function recordKey(body: Buffer, start: number, end: number): number {
  const length = end - start;
  for (const [name, code] of RECORD_KEYS) if (name.length === length && sameBytes(body, start, name, 0, length)) return code;
  return 0;
}

/** A few bytes compared in place (Buffer.compare's native call costs more than the loop for keys). */
function sameBytes(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}

/**
 * The Records array, in one loop: no closure, no key string and no number string per record. A
 * partition key equal to the previous record's (producers often use few) is the same string.
 */
function readRecords(scan: Scanner, body: Buffer, into: RecordColumns): void {
  if (scan.peekByte() === 0x6e) {
    scan.skip();
    return;
  }
  scan.expect(0x5b);
  if (scan.peekByte() === 0x5d) {
    scan.advance();
    return;
  }
  let previousKeyStart = -1;
  let previousKeyEnd = -1;
  let previousKey = '';
  for (;;) {
    let bytes: Buffer | undefined;
    let partitionKey = '';
    let sequenceNumber = '';
    let arrival = 0;
    scan.expect(0x7b);
    if (scan.peekByte() !== 0x7d) {
      for (;;) {
        scan.stringRange();
        const field = scan.escaped ? 0 : recordKey(body, scan.start, scan.end);
        scan.expect(0x3a);
        if (field === DATA) {
          scan.base64Range();
          const n = decodeBase64(body, scan.start, scan.end, into.out, into.used);
          bytes = into.out.subarray(into.used, into.used + n);
          into.used += n;
        } else if (field === PARTITION_KEY) {
          scan.stringRange();
          const { start, end, escaped: keyEscaped } = scan;
          if (!keyEscaped && end - start === previousKeyEnd - previousKeyStart && sameBytes(body, start, body, previousKeyStart, end - start)) partitionKey = previousKey;
          else {
            partitionKey = scan.text(start, end, keyEscaped);
            if (!keyEscaped) {
              previousKeyStart = start;
              previousKeyEnd = end;
              previousKey = partitionKey;
            }
          }
        } else if (field === SEQUENCE_NUMBER) sequenceNumber = scan.string();
        else if (field === ARRIVAL) arrival = scan.epochMillis();
        else scan.skip();
        const c = scan.peekByte();
        scan.advance();
        if (c === 0x7d) break;
        if (c !== 0x2c) throw new MalformedResponse(`expected , or } at byte ${scan.position - 1} of a GetRecords response`);
      }
    } else scan.advance();
    if (!bytes || !sequenceNumber) throw new MalformedResponse('a GetRecords record without Data or SequenceNumber');
    into.data.push(bytes);
    into.partitionKeys.push(partitionKey);
    into.sequenceNumbers.push(sequenceNumber);
    into.arrivals.push(arrival);
    const c = scan.peekByte();
    scan.advance();
    if (c === 0x5d) return;
    if (c !== 0x2c) throw new MalformedResponse(`expected , or ] at byte ${scan.position - 1} of a GetRecords response`);
  }
}

/**
 * Decodes base64 bytes [start, end) of `src` into `dst` at `at`; returns the decoded length.
 * Node's native decoder, fed an ASCII view of the range, runs ~10× faster than a JS loop; it skips
 * characters outside the alphabet, so a length that falls short of the range's says they were there.
 */
function decodeBase64(src: Buffer, start: number, end: number, dst: Buffer, at: number): number {
  const length = end - start;
  if (length % 4 !== 0) throw new MalformedResponse(`a Data field of ${length} base64 characters`);
  let pad = 0;
  if (length > 0 && src[end - 1] === 0x3d) pad++;
  if (length > 1 && src[end - 2] === 0x3d) pad++;
  const expected = (length / 4) * 3 - pad;
  if (expected === 0) return 0;
  const written = dst.write(src.toString('ascii', start, end), at, expected, 'base64');
  if (written !== expected) throw new MalformedResponse('a Data field that is not base64');
  return written;
}

const isNumberByte = (c: number) => (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;
const ENDS_VALUE = new Set([0x2c, 0x7d, 0x5d, 0x20, 0x0a, 0x0d, 0x09]);

/** Just enough JSON for the Kinesis protocol's responses, read from the bytes in place. */
class Scanner {
  private at = 0;
  constructor(private readonly bytes: Buffer) {}

  private ws(): void {
    for (;;) {
      const c = this.bytes[this.at];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.at++;
      else return;
    }
  }

  expect(byte: number): void {
    this.ws();
    if (this.bytes[this.at] !== byte) throw new MalformedResponse(`expected ${String.fromCharCode(byte)} at byte ${this.at} of a GetRecords response`);
    this.at++;
  }

  private peek(): number | undefined {
    this.ws();
    return this.bytes[this.at];
  }

  /** The next byte past white space, not consumed. */
  peekByte(): number | undefined {
    return this.peek();
  }

  /** Past the byte just peeked. */
  advance(): void {
    this.at++;
  }

  get position(): number {
    return this.at;
  }

  /** The last string range read: its contents' bytes [start, end), and whether it has escapes. */
  start = 0;
  end = 0;
  escaped = false;

  /** Reads a string's contents as a byte range into start/end/escaped (no array per string). */
  stringRange(): void {
    this.expect(QUOTE);
    const start = this.at;
    let i = start;
    let escaped = false;
    for (;;) {
      const c = this.bytes[i];
      if (c === undefined) throw new MalformedResponse('an unterminated string in a GetRecords response');
      if (c === BACKSLASH) {
        escaped = true;
        i += 2;
        continue;
      }
      if (c === QUOTE) break;
      i++;
    }
    this.at = i + 1;
    this.start = start;
    this.end = i;
    this.escaped = escaped;
  }

  /**
   * Epoch seconds with a fraction (1764612345.678, or 1.764612345678E9 as the SDKs' servers write
   * it), in whole milliseconds, read from the digits without a string.
   */
  epochMillis(): number {
    this.ws();
    const start = this.at;
    const b = this.bytes;
    let mantissa = 0;
    let digits = 0;
    let fraction = 0;
    let seenPoint = false;
    for (;;) {
      const c = b[this.at];
      if (c !== undefined && c >= 0x30 && c <= 0x39) {
        if (digits < 16) {
          mantissa = mantissa * 10 + (c - 0x30);
          digits++;
          if (seenPoint) fraction++;
        } else if (!seenPoint) fraction--; // a digit past float64's precision still counts its place
        this.at++;
      } else if (c === 0x2e && !seenPoint) {
        seenPoint = true;
        this.at++;
      } else break;
    }
    let exponent = 0;
    const e = b[this.at];
    if (e === 0x65 || e === 0x45) {
      this.at++;
      let sign = 1;
      if (b[this.at] === 0x2b) this.at++;
      else if (b[this.at] === 0x2d) {
        sign = -1;
        this.at++;
      }
      let any = false;
      for (let c = b[this.at]; c !== undefined && c >= 0x30 && c <= 0x39; c = b[++this.at]) {
        exponent = exponent * 10 + (c - 0x30);
        any = true;
      }
      if (!any) throw new MalformedResponse(`a number expected at byte ${start} of a GetRecords response`);
      exponent *= sign;
    }
    if (digits === 0) throw new MalformedResponse(`a number expected at byte ${start} of a GetRecords response`);
    // mantissa × 10^(exponent − fraction) seconds, in ms: one rounding, at the end.
    const shift = exponent - fraction + 3;
    return Math.round(shift >= 0 ? mantissa * 10 ** shift : mantissa / 10 ** -shift);
  }

  /** Calls `each` with every key of the object whose `{` was read; `each` reads the value. */
  members(each: (key: string) => void): void {
    if (this.peek() === 0x7d) {
      this.at++;
      return;
    }
    for (;;) {
      const key = this.string();
      this.expect(0x3a);
      each(key);
      const c = this.peek();
      this.at++;
      if (c === 0x7d) return;
      if (c !== 0x2c) throw new MalformedResponse(`expected , or } at byte ${this.at - 1} of a GetRecords response`);
    }
  }

  /** Calls `each` for every element of the array about to be read (or of null); `each` reads it. */
  elements(each: () => void): void {
    if (this.peek() === 0x6e) {
      this.skip();
      return;
    }
    this.expect(0x5b);
    if (this.peek() === 0x5d) {
      this.at++;
      return;
    }
    for (;;) {
      each();
      const c = this.peek();
      this.at++;
      if (c === 0x5d) return;
      if (c !== 0x2c) throw new MalformedResponse(`expected , or ] at byte ${this.at - 1} of a GetRecords response`);
    }
  }

  /** A base64 string's byte range into start/end (no escapes in base64: the next quote ends it). */
  base64Range(): void {
    this.expect(QUOTE);
    const start = this.at;
    const end = this.bytes.indexOf(QUOTE, start);
    if (end < 0) throw new MalformedResponse('an unterminated string in a GetRecords response');
    this.at = end + 1;
    this.start = start;
    this.end = end;
    this.escaped = false;
  }

  string(): string {
    this.stringRange();
    return this.text(this.start, this.end, this.escaped);
  }

  /** A string's contents from its byte range: as they are, or through JSON.parse when it has escapes. */
  text(start: number, end: number, escaped: boolean): string {
    return escaped ? (JSON.parse(this.bytes.toString('utf8', start - 1, end + 1)) as string) : this.bytes.toString('utf8', start, end);
  }

  nullableString(): string | undefined {
    if (this.peek() === 0x6e) {
      this.skip();
      return undefined;
    }
    return this.string();
  }

  number(): number {
    this.ws();
    const start = this.at;
    while (this.at < this.bytes.length && isNumberByte(this.bytes[this.at]!)) this.at++;
    const value = Number(this.bytes.toString('latin1', start, this.at));
    if (!Number.isFinite(value)) throw new MalformedResponse(`a number expected at byte ${start} of a GetRecords response`);
    return value;
  }

  /** Passes over any value (ChildShards, EncryptionType, …). */
  skip(): void {
    const c = this.peek();
    if (c === QUOTE) {
      this.string();
      return;
    }
    if (c === 0x7b) {
      this.at++;
      this.members(() => this.skip());
      return;
    }
    if (c === 0x5b) {
      this.elements(() => this.skip());
      return;
    }
    const start = this.at;
    while (this.at < this.bytes.length && !ENDS_VALUE.has(this.bytes[this.at]!)) this.at++;
    if (this.at === start) throw new MalformedResponse(`a value expected at byte ${start} of a GetRecords response`);
  }
}

const EMPTY_OBJECT = new Uint8Array(Buffer.from('{}'));
/** What the reader passes to GetRecordsCommand → what its response decoded to. */
const decoded = new WeakMap<object, DecodedGetRecords>();

/**
 * Keeps the SDK for what it is good at — credentials, signing, endpoints, retries of the
 * connection, error parsing — and takes GetRecords' successful response bodies from it before its
 * deserializer: they are decoded here, and the SDK is handed an empty object to deserialize.
 */
export function decodeGetRecordsInPlace(client: KinesisClient): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const response = result.response as { statusCode?: number; body?: unknown };
      if (context.commandName !== 'GetRecordsCommand' || response.statusCode !== 200) return result;
      decoded.set(args.input as object, await readAndDecode(response.body));
      response.body = EMPTY_OBJECT;
      return result;
    },
    { step: 'deserialize', priority: 'low', name: 'firehoseDecodeGetRecords' },
  );
}

/** The decoded response of a GetRecordsCommand sent with this input. */
export function decodedResponse(input: object): DecodedGetRecords {
  const response = decoded.get(input);
  if (!response) throw new Error('no decoded GetRecords response for this request');
  decoded.delete(input);
  return response;
}

/**
 * A response's chunks joined into one scratch buffer, reused by every response: it is decoded the
 * moment it is whole, in the same turn, so one buffer serves every shard reader, and a fresh 10 MB
 * allocation per response (page faults, GC) is avoided.
 */
let scratch = Buffer.allocUnsafeSlow(1 << 20);

async function readAndDecode(body: unknown): Promise<DecodedGetRecords> {
  if (body instanceof Uint8Array) return decodeGetRecords(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    length += chunk.length;
  }
  if (chunks.length === 1) return decodeGetRecords(chunks[0]!);
  // Grown to the largest response seen, rounded up to a MiB: no doubling past what Kinesis sends (10 MB of data, ~14 MB of JSON).
  if (scratch.length < length) scratch = Buffer.allocUnsafeSlow(Math.ceil(length / (1 << 20)) * (1 << 20));
  let at = 0;
  for (const chunk of chunks) at += chunk.copy(scratch, at);
  // Decoded in this same turn: no other response can be copied into the scratch buffer meanwhile.
  return decodeGetRecords(scratch.subarray(0, length));
}
