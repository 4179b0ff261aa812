import type { GetRecordsCommandOutput, KinesisClient } from '@aws-sdk/client-kinesis';

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

/** A GetRecords response the byte decoder does not read: not whole, not JSON, or JSON it does not expect. */
export class MalformedResponse extends Error {
  override readonly name = 'MalformedResponse';
}

/** A whole GetRecords response body, decoded (see GetRecordsDecoder). */
export function decodeGetRecords(body: Buffer): DecodedGetRecords {
  const decoder = new GetRecordsDecoder(body.length);
  decoder.push(body);
  return decoder.end();
}

/** Where the decoder is in the response: what the next unit of it is. */
const enum Stage {
  Open,
  Member,
  Record,
  AfterRecords,
  Done,
}

/**
 * Thrown by a unit that ran past the bytes received so far: one shared object, as every chunk's
 * end meets one (a new Error per chunk, with its stack, cost 2.5 % of the reader's thread).
 */
class Incomplete {}
const INCOMPLETE = new Incomplete();

/**
 * Decodes a GetRecords response straight from its bytes, as they arrive. The SDK's generic
 * deserializer costs more CPU than gzip does (a regex over every Data field, a schema walk, a JS
 * string per field); here every record's Data is base64-decoded into one buffer for the whole
 * response, and the only allocations per record are its Buffer view, its partition key and
 * sequence number.
 *
 * The body is decoded a unit at a time (a record, or one of the response's other members) as its
 * socket chunks arrive, so a chunk is garbage the moment it is read: memory holds the decoded
 * records (what the reader reserved the budget for) and the one unit cut by a chunk's end, not a
 * second copy of a 14 MB response in chunks and a third joined.
 */
export class GetRecordsDecoder {
  private readonly scan = new Scanner();
  private stage = Stage.Open;
  /** Bytes of a unit cut off by the end of a chunk, waiting for the next chunk. */
  private pending = Buffer.allocUnsafeSlow(0);
  private pendingLength = 0;
  /** A unit that ran off the end is tried again once this much is pending (a large record is not rescanned per chunk). */
  private retryAt = 0;
  /** Bytes of the body decoded and let go of: where the pending bytes start in the body. */
  private consumed = 0;
  private readonly records: RecordColumns;
  private nextShardIterator: string | undefined;
  private millisBehindLatest: number | undefined;

  /** `expectedBytes`, the body's Content-Length when known, sizes the buffer the records are decoded into. */
  constructor(expectedBytes: number | undefined) {
    // Base64 is 4 bytes for 3: the decoded records fit in 3/4 of the body.
    const out = Buffer.allocUnsafeSlow(expectedBytes !== undefined ? Math.ceil((expectedBytes * 3) / 4) : 0);
    this.records = { out, used: 0, dataBytes: 0, gathered: Buffer.allocUnsafeSlow(Math.min(GATHERED_BYTES * 2, expectedBytes ?? Infinity)), gatheredLength: 0, gatheredAt: 0, previousKey: undefined, data: [], partitionKeys: [], sequenceNumbers: [], arrivals: [] };
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.pendingLength === 0) {
      // Nothing cut off before: decoded from the chunk itself, only its last cut unit kept.
      this.decode(chunk, false);
      return;
    }
    this.reserve(this.pendingLength + chunk.length);
    this.pendingLength += chunk.copy(this.pending, this.pendingLength);
    if (this.pendingLength < this.retryAt) return;
    this.decode(this.pending.subarray(0, this.pendingLength), false);
  }

  /** The response, once its last chunk was pushed; MalformedResponse when it is not a whole one. */
  end(): DecodedGetRecords {
    if (this.pendingLength > 0) this.decode(this.pending.subarray(0, this.pendingLength), true);
    if (this.stage !== Stage.Done) throw new MalformedResponse('a GetRecords response that ends before its last }');
    flushData(this.records);
    const { data, partitionKeys, sequenceNumbers, arrivals, dataBytes } = this.records;
    return { data, partitionKeys, sequenceNumbers, arrivals, nextShardIterator: this.nextShardIterator, millisBehindLatest: this.millisBehindLatest, dataBytes };
  }

  /** Decodes every whole unit of `bytes`; what is left is kept for the next chunk (or is an error at the end). */
  private decode(bytes: Buffer, ended: boolean): void {
    const scan = this.scan;
    scan.reset(bytes, this.consumed);
    for (;;) {
      const mark = scan.position;
      try {
        if (this.stage === Stage.Done) {
          scan.trailingSpace();
          break;
        }
        this.unit();
      } catch (err) {
        if (!(err instanceof MalformedResponse || err instanceof Incomplete)) throw err;
        // Cut off by the chunk's end, or malformed: only the end of the body can tell which.
        if (ended) throw err instanceof Incomplete ? new MalformedResponse(`a GetRecords response that ends inside a value, at byte ${scan.offset(mark)}`) : err;
        // Nothing of a cut unit was kept (a record's columns and bytes are taken once it is whole): read it again.
        scan.position = mark;
        break;
      }
    }
    const rest = bytes.length - scan.position;
    this.consumed += scan.position;
    if (rest === 0) {
      this.pendingLength = 0;
      this.retryAt = 0;
      return;
    }
    // The cut unit moves to the front of the pending buffer (it may be that buffer already).
    this.reserve(rest);
    bytes.copy(this.pending, 0, scan.position);
    this.pendingLength = rest;
    this.retryAt = rest * 2;
  }

  private reserve(length: number): void {
    if (this.pending.length >= length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(length, this.pending.length * 2, 64 * 1024));
    this.pending.copy(grown, 0, 0, this.pendingLength);
    this.pending = grown;
  }

  /** One unit: the opening brace, a member of the response, or one record, each with what follows it. */
  private unit(): void {
    const scan = this.scan;
    switch (this.stage) {
      case Stage.Open:
        scan.expect(0x7b);
        if (scan.peekByte() === undefined) throw INCOMPLETE;
        if (scan.peekByte() === 0x7d) {
          scan.advance();
          this.stage = Stage.Done;
        } else this.stage = Stage.Member;
        return;
      case Stage.Member: {
        const key = scan.string();
        scan.expect(0x3a);
        if (key === 'Records') {
          const c = scan.peekByte();
          if (c === 0x6e) scan.skip();
          else {
            scan.expect(0x5b);
            const next = scan.peekByte();
            if (next === undefined) throw INCOMPLETE;
            if (next !== 0x5d) {
              this.stage = Stage.Record;
              return;
            }
            scan.advance();
          }
        } else if (key === 'NextShardIterator') this.nextShardIterator = scan.nullableString();
        else if (key === 'MillisBehindLatest') this.millisBehindLatest = scan.number();
        else scan.skip();
        this.afterMember();
        return;
      }
      case Stage.Record:
        if (readRecord(scan, this.records)) this.stage = Stage.AfterRecords;
        return;
      case Stage.AfterRecords:
        this.afterMember();
        return;
      case Stage.Done:
        return;
    }
  }

  /** The , or } after a member of the response. */
  private afterMember(): void {
    const scan = this.scan;
    const c = scan.peekByte();
    if (c === undefined) throw INCOMPLETE;
    scan.advance();
    if (c === 0x7d) this.stage = Stage.Done;
    else if (c === 0x2c) this.stage = Stage.Member;
    else throw new MalformedResponse(`expected , or } at byte ${scan.offset(scan.position - 1)} of a GetRecords response`);
  }
}

/** Partition keys up to this long are remembered, so a record with the previous record's key shares its string. */
const MAX_SHARED_KEY_BYTES = 256;
/** A response with no Content-Length is decoded into blocks of this size (a larger record gets its own). */
const BLOCK_BYTES = 1 << 20;

interface RecordColumns {
  out: Buffer;
  used: number;
  dataBytes: number;
  /** Records' base64 not yet decoded (flushData), and where in `out` it decodes to. */
  readonly gathered: Buffer;
  gatheredLength: number;
  gatheredAt: number;
  /** The previous record's partition key when it was ASCII (its characters are its bytes), to share. */
  previousKey: string | undefined;
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

/** An ASCII string's characters against bytes from `start` (its length checked by the caller). */
function sameChars(bytes: Uint8Array, start: number, text: string): boolean {
  for (let i = 0; i < text.length; i++) if (bytes[start + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** A few bytes compared in place (Buffer.compare's native call costs more than the loop for keys). */
function sameBytes(a: Uint8Array, aStart: number, b: Uint8Array, bStart: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (a[aStart + i] !== b[bStart + i]) return false;
  return true;
}

/**
 * One record of the Records array and the , or ] after it, in one pass: no closure, no key string
 * and no number string per record. Nothing is kept of a record cut off by the end of the bytes
 * (its bytes and columns are taken last); true when it was the array's last.
 */
function readRecord(scan: Scanner, into: RecordColumns): boolean {
  const body = scan.bytes;
  let dataStart = -1;
  let dataEnd = -1;
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
        dataStart = scan.start;
        dataEnd = scan.end;
      } else if (field === PARTITION_KEY) {
        scan.stringRange();
        const { start, end, escaped: keyEscaped } = scan;
        const length = end - start;
        const plain = scan.ascii && !keyEscaped;
        const previous = into.previousKey;
        if (plain && previous !== undefined && previous.length === length && sameChars(body, start, previous)) partitionKey = previous;
        else {
          partitionKey = scan.text(start, end, keyEscaped, scan.ascii);
          into.previousKey = plain && length <= MAX_SHARED_KEY_BYTES ? partitionKey : undefined;
        }
      } else if (field === SEQUENCE_NUMBER) sequenceNumber = scan.string();
      else if (field === ARRIVAL) arrival = scan.epochMillis();
      else scan.skip();
      const c = scan.peekByte();
      if (c === undefined) throw INCOMPLETE;
      scan.advance();
      if (c === 0x7d) break;
      if (c !== 0x2c) throw new MalformedResponse(`expected , or } at byte ${scan.offset(scan.position - 1)} of a GetRecords response`);
    }
  } else scan.advance();
  const c = scan.peekByte();
  if (c === undefined) throw INCOMPLETE;
  scan.advance();
  if (c !== 0x5d && c !== 0x2c) throw new MalformedResponse(`expected , or ] at byte ${scan.offset(scan.position - 1)} of a GetRecords response`);
  if (dataStart < 0 || !sequenceNumber) throw new MalformedResponse('a GetRecords record without Data or SequenceNumber');
  // Taken only now that the record is whole: a record cut off by a chunk's end leaves nothing to undo.
  into.data.push(decodeData(body, dataStart, dataEnd, into));
  into.partitionKeys.push(partitionKey);
  into.sequenceNumbers.push(sequenceNumber);
  into.arrivals.push(arrival);
  return c === 0x5d;
}

/**
 * A record's Data: its place in the response's buffer (a new block when it has no room left), its
 * base64 gathered with the records before it to be decoded at once (see flushData). Each record
 * takes whole 3-byte groups: a padded last group is gathered with its = as A, so the gathered text
 * decodes as one run, and the byte or two that padding stood for are left over past the record's end.
 */
function decodeData(body: Buffer, start: number, end: number, into: RecordColumns): Buffer {
  const length = end - start;
  if (length % 4 !== 0) throw new MalformedResponse(`a Data field of ${length} base64 characters`);
  const taken = (length / 4) * 3;
  if (into.used + taken > into.out.length) {
    flushData(into);
    into.out = Buffer.allocUnsafeSlow(Math.max(BLOCK_BYTES, taken));
    into.used = 0;
  }
  let pad = 0;
  if (length > 0 && body[end - 1] === 0x3d) pad++;
  if (length > 1 && body[end - 2] === 0x3d) pad++;
  const n = taken - pad;
  const at = into.used;
  if (length > GATHERED_BYTES || length > into.gathered.length) {
    // A large one is decoded on its own, from the body: gathering it would only copy it once more.
    // (The gathering buffer is no larger than the body said it would be: a tip-of-stream answer
    // of a few records, several a second for each shard, does not allocate 128 KiB.)
    flushData(into);
    decodeBase64(body, start, end, into.out, at);
  } else if (length > 0) {
    const gathered = into.gathered;
    if (into.gatheredLength === 0) into.gatheredAt = at;
    if (into.gatheredLength + length > gathered.length) {
      flushData(into);
      into.gatheredAt = at;
    }
    const from = into.gatheredLength;
    body.copy(gathered, from, start, end);
    if (pad > 0) gathered.fill(0x41, from + length - pad, from + length);
    into.gatheredLength += length;
  }
  into.used += taken;
  into.dataBytes += n;
  return into.out.subarray(at, at + n);
}

/** Records whose base64 is gathered and decoded together: past this, one is decoded on its own. */
const GATHERED_BYTES = 64 * 1024;

/**
 * Decodes the base64 gathered since the last flush into the records' places, in one native call:
 * one call per record, each with a JS string of its base64 (1.4 × its bytes of garbage), made
 * decoding a response about 40 % slower. Node's decoder stops at a character outside the
 * alphabet (or an = before the end), so a run that decodes short holds a record that is not base64
 * — as one decoded alone would have.
 */
function flushData(into: RecordColumns): void {
  const length = into.gatheredLength;
  if (length === 0) return;
  const expected = (length / 4) * 3;
  const written = into.out.write(into.gathered.toString('latin1', 0, length), into.gatheredAt, expected, 'base64');
  if (written !== expected) throw new MalformedResponse('a Data field that is not base64');
  into.gatheredLength = 0;
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
  bytes: Buffer = Buffer.alloc(0);
  /** Where `bytes` starts in the response's body, for the offsets errors name. */
  private base = 0;

  reset(bytes: Buffer, base: number): void {
    this.bytes = bytes;
    this.base = base;
    this.at = 0;
  }

  /** The body's offset of a position in `bytes`. */
  offset(at: number): number {
    return this.base + at;
  }

  /** Only white space may follow the response's closing brace. */
  trailingSpace(): void {
    this.ws();
    if (this.at < this.bytes.length) throw new MalformedResponse(`text after the end of a GetRecords response, at byte ${this.offset(this.at)}`);
  }

  private ws(): void {
    for (;;) {
      const c = this.bytes[this.at];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) this.at++;
      else return;
    }
  }

  expect(byte: number): void {
    this.ws();
    if (this.bytes[this.at] !== byte) {
      if (this.at >= this.bytes.length) throw INCOMPLETE;
      throw new MalformedResponse(`expected ${String.fromCharCode(byte)} at byte ${this.offset(this.at)} of a GetRecords response`);
    }
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

  set position(at: number) {
    this.at = at;
  }

  /** The last string range read: its contents' bytes [start, end), whether it has escapes, whether every byte is ASCII. */
  start = 0;
  end = 0;
  escaped = false;
  ascii = true;

  /** Reads a string's contents as a byte range into start/end/escaped (no array per string). */
  stringRange(): void {
    this.expect(QUOTE);
    const start = this.at;
    let i = start;
    let escaped = false;
    let ascii = true;
    for (;;) {
      const c = this.bytes[i];
      if (c === undefined) throw INCOMPLETE;
      if (c === BACKSLASH) {
        escaped = true;
        i += 2;
        continue;
      }
      if (c === QUOTE) break;
      if (c >= 0x80) ascii = false;
      i++;
    }
    this.at = i + 1;
    this.start = start;
    this.end = i;
    this.escaped = escaped;
    this.ascii = ascii;
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
      if (!any) throw new MalformedResponse(`a number expected at byte ${this.offset(start)} of a GetRecords response`);
      exponent *= sign;
    }
    if (digits === 0 && this.at >= b.length) throw INCOMPLETE;
    if (digits === 0) throw new MalformedResponse(`a number expected at byte ${this.offset(start)} of a GetRecords response`);
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
      if (c !== 0x2c) throw new MalformedResponse(`expected , or } at byte ${this.offset(this.at - 1)} of a GetRecords response`);
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
      if (c !== 0x2c) throw new MalformedResponse(`expected , or ] at byte ${this.offset(this.at - 1)} of a GetRecords response`);
    }
  }

  /** A base64 string's byte range into start/end (no escapes in base64: the next quote ends it). */
  base64Range(): void {
    this.expect(QUOTE);
    const start = this.at;
    const end = this.bytes.indexOf(QUOTE, start);
    if (end < 0) throw INCOMPLETE;
    this.at = end + 1;
    this.start = start;
    this.end = end;
    this.escaped = false;
  }

  string(): string {
    this.stringRange();
    return this.text(this.start, this.end, this.escaped, this.ascii);
  }

  /**
   * A string's contents from its byte range: through JSON.parse when it has escapes, else as they
   * are — read as Latin-1 when every byte is ASCII (the same characters; Node's UTF-8 decoder costs
   * about twice as much for sequence numbers and most partition keys).
   */
  text(start: number, end: number, escaped: boolean, ascii: boolean): string {
    if (escaped) return JSON.parse(this.bytes.toString('utf8', start - 1, end + 1)) as string;
    return this.bytes.toString(ascii ? 'latin1' : 'utf8', start, end);
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
    if (!Number.isFinite(value)) throw new MalformedResponse(`a number expected at byte ${this.offset(start)} of a GetRecords response`);
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
    if (this.at === start && this.at >= this.bytes.length) throw INCOMPLETE;
    if (this.at === start) throw new MalformedResponse(`a value expected at byte ${this.offset(start)} of a GetRecords response`);
  }
}

const EMPTY_OBJECT = new Uint8Array(Buffer.from('{}'));
/** What the reader passes to GetRecordsCommand → what its response decoded to. */
const decoded = new WeakMap<object, DecodedGetRecords>();
/** GetRecordsCommand inputs whose response the SDK's own deserializer reads (see readGenerally). */
const leftToTheSdk = new WeakSet<object>();

/**
 * The response to a GetRecordsCommand sent with this input is left to the SDK's deserializer: for
 * a response the byte decoder declined (MalformedResponse). It reads only the JSON Kinesis writes;
 * valid JSON written otherwise — `\/` for `/` in a Data field, an escaped key, as some emulators
 * and proxies write it — would otherwise hold its shard back for good, read and declined again.
 */
export function readGenerally<T extends object>(input: T): T {
  leftToTheSdk.add(input);
  return input;
}

/** A GetRecords response as the SDK's deserializer read it, in the decoder's columns. */
export function fromSdkOutput(output: GetRecordsCommandOutput): DecodedGetRecords {
  const records = output.Records ?? [];
  const data: Buffer[] = new Array(records.length);
  const partitionKeys: string[] = new Array(records.length);
  const sequenceNumbers: string[] = new Array(records.length);
  const arrivals: number[] = new Array(records.length);
  let dataBytes = 0;
  for (let i = 0; i < records.length; i++) {
    const { Data, PartitionKey, SequenceNumber, ApproximateArrivalTimestamp } = records[i]!;
    if (!Data || !SequenceNumber) throw new MalformedResponse('a GetRecords record without Data or SequenceNumber');
    data[i] = Buffer.from(Data.buffer, Data.byteOffset, Data.byteLength);
    partitionKeys[i] = PartitionKey ?? '';
    sequenceNumbers[i] = SequenceNumber;
    arrivals[i] = ApproximateArrivalTimestamp?.getTime() ?? 0;
    dataBytes += Data.byteLength;
  }
  return { data, partitionKeys, sequenceNumbers, arrivals, nextShardIterator: output.NextShardIterator ?? undefined, millisBehindLatest: output.MillisBehindLatest, dataBytes };
}

/**
 * Keeps the SDK for what it is good at — credentials, signing, endpoints, retries of the
 * connection, error parsing — and takes GetRecords' successful response bodies from it before its
 * deserializer: they are decoded here, and the SDK is handed an empty object to deserialize.
 */
export function decodeGetRecordsInPlace(client: KinesisClient): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const response = result.response as { statusCode?: number; body?: unknown; headers?: Record<string, string | undefined> };
      if (context.commandName !== 'GetRecordsCommand' || response.statusCode !== 200 || leftToTheSdk.has(args.input as object)) return result;
      decoded.set(args.input as object, await readAndDecode(response.body, contentLength(response.headers)));
      response.body = EMPTY_OBJECT;
      return result;
    },
    { step: 'deserialize', priority: 'low', name: 'firehoseDecodeGetRecords' },
  );
}

/** A response's Content-Length, when it has one that can be believed (an identity-encoded body's). */
function contentLength(headers: Record<string, string | undefined> | undefined): number | undefined {
  if (!headers || (headers['content-encoding'] ?? 'identity') !== 'identity') return undefined;
  const length = Number(headers['content-length']);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/** The decoded response of a GetRecordsCommand sent with this input. */
export function decodedResponse(input: object): DecodedGetRecords {
  const response = decoded.get(input);
  if (!response) throw new Error('no decoded GetRecords response for this request');
  decoded.delete(input);
  return response;
}

async function readAndDecode(body: unknown, contentLength: number | undefined): Promise<DecodedGetRecords> {
  if (body instanceof Uint8Array) return decodeGetRecords(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
  const decoder = new GetRecordsDecoder(contentLength);
  for await (const chunk of body as AsyncIterable<Buffer>) decoder.push(chunk);
  return decoder.end();
}
