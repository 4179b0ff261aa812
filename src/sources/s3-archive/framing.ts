/**
 * How records are split out of an archived object that has no manifest (written before manifests
 * existed, or by Amazon Data Firehose itself):
 * - `newline`: one record per line, the "\n" dropped (records written with appendNewlineDelimiter).
 *   A record that itself held a newline comes back as two.
 * - `json-concat`: JSON values written back to back (`{…}{…}`, Firehose without a delimiter), split
 *   where each top-level value ends. Anything between values but whitespace is an error.
 * Binary records written without a delimiter cannot be split at all: only a manifest says where
 * each begins.
 */
export type Framing = 'newline' | 'json-concat';
export const FRAMINGS: readonly Framing[] = ['newline', 'json-concat'];

export class FramingError extends Error {}

export function splitFramed(raw: Buffer, framing: Framing): Buffer[] {
  return framing === 'newline' ? splitLines(raw) : splitJsonValues(raw);
}

function splitLines(raw: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = raw.indexOf(0x0a); i !== -1; i = raw.indexOf(0x0a, start)) {
    out.push(raw.subarray(start, i));
    start = i + 1;
  }
  if (start < raw.length) out.push(raw.subarray(start));
  return out;
}

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

function splitJsonValues(raw: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
      continue;
    }
    if (depth === 0) {
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) continue;
      if (c !== OPEN_BRACE && c !== OPEN_BRACKET) throw new FramingError(`json-concat: byte ${i} is ${JSON.stringify(String.fromCharCode(c))} between values; only objects and arrays written back to back can be split (try --framing newline)`);
      start = i;
    }
    if (c === QUOTE) inString = true;
    else if (c === OPEN_BRACE || c === OPEN_BRACKET) depth++;
    else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
      if (depth === 0) out.push(raw.subarray(start, i + 1));
    }
  }
  if (depth !== 0) throw new FramingError('json-concat: the object ends inside a JSON value');
  return out;
}
