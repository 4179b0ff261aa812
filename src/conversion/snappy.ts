/**
 * Snappy compression (the raw format Parquet pages use: a varint length, then literals and
 * copies), written for speed in plain JS: it compresses in 64 KiB fragments as the reference
 * implementation does, writes straight into one scratch buffer, and reads input four bytes at a
 * time. hyparquet-writer's own compressor emits each byte through a growable writer; profiled on
 * the Parquet path it took a quarter of a conversion thread, this one about a third of that.
 */

const FRAGMENT_BYTES = 1 << 16;
const HASH_BITS = 14;
const HASH_SHIFT = 32 - HASH_BITS;
/** The reference keeps this many bytes at a fragment's end out of match finding (it reads ahead). */
const INPUT_MARGIN = 15;

const table = new Uint16Array(1 << HASH_BITS);
let scratch = new Uint8Array(0);

/** The most a compressed `n` bytes can take (the reference's MaxCompressedLength). */
function maxCompressedLength(n: number): number {
  return 32 + n + Math.floor(n / 6);
}

function load32(a: Uint8Array, i: number): number {
  return a[i]! | (a[i + 1]! << 8) | (a[i + 2]! << 16) | (a[i + 3]! << 24);
}

function hash(word: number): number {
  return Math.imul(word, 0x1e35a7bd) >>> HASH_SHIFT;
}

function emitLiteral(input: Uint8Array, from: number, length: number, out: Uint8Array, op: number): number {
  const n = length - 1;
  if (n < 60) out[op++] = n << 2;
  else if (n < 0x100) {
    out[op++] = 60 << 2;
    out[op++] = n;
  } else {
    // A fragment is at most 64 KiB: two length bytes always do.
    out[op++] = 61 << 2;
    out[op++] = n & 0xff;
    out[op++] = n >>> 8;
  }
  if (length < 16) {
    for (let i = 0; i < length; i++) out[op + i] = input[from + i]!;
  } else {
    out.set(input.subarray(from, from + length), op);
  }
  return op + length;
}

function emitCopyUpTo64(out: Uint8Array, op: number, offset: number, length: number): number {
  if (length < 12 && offset < 2048) {
    out[op++] = 1 | ((length - 4) << 2) | ((offset >>> 8) << 5);
    out[op++] = offset & 0xff;
  } else {
    out[op++] = 2 | ((length - 1) << 2);
    out[op++] = offset & 0xff;
    out[op++] = offset >>> 8;
  }
  return op;
}

function emitCopy(out: Uint8Array, op: number, offset: number, length: number): number {
  while (length >= 68) {
    op = emitCopyUpTo64(out, op, offset, 64);
    length -= 64;
  }
  if (length > 64) {
    op = emitCopyUpTo64(out, op, offset, 60);
    length -= 60;
  }
  return emitCopyUpTo64(out, op, offset, length);
}

/** One fragment (at most 64 KiB, so every offset fits 16 bits); returns where its output ends. */
function compressFragment(input: Uint8Array, start: number, end: number, out: Uint8Array, op: number): number {
  let ip = start;
  let nextEmit = start;
  if (end - start >= INPUT_MARGIN) {
    table.fill(0);
    const ipLimit = end - INPUT_MARGIN;
    ip++;
    let nextHash = hash(load32(input, ip));
    outer: for (;;) {
      // Look for a 4-byte match, skipping ahead faster the longer nothing matches.
      let skip = 32;
      let nextIp = ip;
      let candidate: number;
      do {
        ip = nextIp;
        const h = nextHash;
        nextIp = ip + (skip++ >>> 5);
        if (nextIp > ipLimit) break outer;
        nextHash = hash(load32(input, nextIp));
        candidate = start + table[h]!;
        table[h] = ip - start;
      } while (load32(input, ip) !== load32(input, candidate));
      op = emitLiteral(input, nextEmit, ip - nextEmit, out, op);
      // Copies, for as long as the next bytes match again at once.
      do {
        const base = ip;
        let matched = 4;
        while (base + matched < end && input[base + matched] === input[candidate + matched]) matched++;
        ip += matched;
        op = emitCopy(out, op, base - candidate, matched);
        nextEmit = ip;
        if (ip >= ipLimit) break outer;
        table[hash(load32(input, ip - 1))] = ip - 1 - start;
        const h = hash(load32(input, ip));
        candidate = start + table[h]!;
        table[h] = ip - start;
      } while (load32(input, ip) === load32(input, candidate));
      nextHash = hash(load32(input, ++ip));
    }
  }
  if (nextEmit < end) op = emitLiteral(input, nextEmit, end - nextEmit, out, op);
  return op;
}

/** `input` compressed as one raw Snappy block. */
export function snappyCompress(input: Uint8Array): Uint8Array {
  const needed = maxCompressedLength(input.length);
  if (scratch.length < needed) scratch = new Uint8Array(Math.max(needed, scratch.length * 2));
  const out = scratch;
  let op = 0;
  for (let n = input.length; ; ) {
    if (n < 0x80) {
      out[op++] = n;
      break;
    }
    out[op++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  for (let start = 0; start < input.length; start += FRAGMENT_BYTES) {
    op = compressFragment(input, start, Math.min(input.length, start + FRAGMENT_BYTES), out, op);
  }
  // Copied out: the scratch buffer is the next call's.
  return out.slice(0, op);
}
