/**
 * Firehose's S3 prefix expressions: `!{timestamp:<Java DateTimeFormatter pattern>}`,
 * `!{firehose:random-string}`, `!{firehose:error-output-type}`, `!{partitionKeyFromQuery:name}`,
 * `!{partitionKeyFromLambda:name}`. A template is compiled once, at configuration time, into parts
 * rendered per object.
 */
import { randomBytes } from 'node:crypto';

type Part =
  | { kind: 'literal'; text: string }
  | { kind: 'timestamp'; format: DateFormat }
  | { kind: 'random' }
  | { kind: 'errorType' }
  | { kind: 'fromQuery' | 'fromLambda'; key: string };

export interface CompiledPrefix {
  readonly template: string;
  readonly parts: readonly Part[];
  readonly hasExpressions: boolean;
  readonly hasTimestamp: boolean;
  readonly hasErrorType: boolean;
  readonly queryKeys: readonly string[];
  readonly lambdaKeys: readonly string[];
}

export interface PrefixContext {
  /** The arrival time of the oldest record in the object, epoch ms (UTC). */
  readonly time: number;
  /** By namespaced name: `partitionKeyFromQuery:customer`, `partitionKeyFromLambda:region`. */
  readonly partitionKeys?: Readonly<Record<string, string>>;
  readonly errorOutputType?: string;
}

export class PrefixError extends Error {}

const EXPRESSION = /!\{([^}:]*):([^}]*)\}/g;

export function compilePrefix(template: string): CompiledPrefix {
  const parts: Part[] = [];
  let last = 0;
  for (const match of template.matchAll(EXPRESSION)) {
    const literal = template.slice(last, match.index);
    if (literal.includes('!{')) throw new PrefixError(`"!{" must start a !{namespace:value} expression (at "${literal.slice(literal.indexOf('!{'))}")`);
    if (literal) parts.push({ kind: 'literal', text: literal });
    parts.push(expression(match[1]!, match[2]!));
    last = match.index + match[0].length;
  }
  const rest = template.slice(last);
  if (rest.includes('!{')) throw new PrefixError(`"!{" must start a !{namespace:value} expression (at "${rest.slice(rest.indexOf('!{'))}")`);
  if (rest) parts.push({ kind: 'literal', text: rest });
  return {
    template,
    parts,
    hasExpressions: parts.some((p) => p.kind !== 'literal'),
    hasTimestamp: parts.some((p) => p.kind === 'timestamp'),
    hasErrorType: parts.some((p) => p.kind === 'errorType'),
    queryKeys: parts.flatMap((p) => (p.kind === 'fromQuery' ? [p.key] : [])),
    lambdaKeys: parts.flatMap((p) => (p.kind === 'fromLambda' ? [p.key] : [])),
  };
}

function expression(namespace: string, value: string): Part {
  switch (namespace) {
    case 'timestamp':
      return { kind: 'timestamp', format: compileDateFormat(value) };
    case 'firehose':
      if (value === 'random-string') return { kind: 'random' };
      if (value === 'error-output-type') return { kind: 'errorType' };
      throw new PrefixError(`!{firehose:${value}}: the firehose namespace has random-string and error-output-type`);
    case 'partitionKeyFromQuery':
    case 'partitionKeyFromLambda':
      if (!/^[A-Za-z0-9_-]+$/.test(value)) throw new PrefixError(`!{${namespace}:${value}}: a partition key name is letters, digits, _ and -`);
      return { kind: namespace === 'partitionKeyFromQuery' ? 'fromQuery' : 'fromLambda', key: value };
    default:
      throw new PrefixError(
        `!{${namespace}:${value}}: unknown namespace ${JSON.stringify(namespace)} (timestamp, firehose, partitionKeyFromQuery, partitionKeyFromLambda)`,
      );
  }
}

/** Appends `yyyy/MM/dd/HH/` where Firehose does: a prefix without a timestamp expression. */
export function withDefaultTime(prefix: CompiledPrefix): CompiledPrefix {
  if (prefix.hasTimestamp) return prefix;
  return compilePrefix(`${prefix.template}!{timestamp:yyyy/MM/dd/HH/}`);
}

export function renderPrefix(prefix: CompiledPrefix, context: PrefixContext): string {
  let out = '';
  const date = new Date(context.time);
  for (const part of prefix.parts) {
    switch (part.kind) {
      case 'literal':
        out += part.text;
        break;
      case 'timestamp':
        out += part.format(date);
        break;
      case 'random':
        out += randomBytes(8).toString('base64url').slice(0, 11).toLowerCase();
        break;
      case 'errorType':
        if (!context.errorOutputType) throw new PrefixError('!{firehose:error-output-type} outside the error output');
        out += context.errorOutputType;
        break;
      case 'fromQuery':
      case 'fromLambda': {
        const name = `${part.kind === 'fromQuery' ? 'partitionKeyFromQuery' : 'partitionKeyFromLambda'}:${part.key}`;
        const value = context.partitionKeys?.[name];
        if (value === undefined) throw new PrefixError(`no partition key ${name} for this record`);
        out += value;
        break;
      }
    }
  }
  return out;
}

type DateFormat = (date: Date) => string;

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const pad = (n: number, width: number) => String(n).padStart(width, '0');

/**
 * The part of Java's DateTimeFormatter that prefixes use, in UTC: y u M L d D H h k K m s S a E,
 * text in single quotes taken literally ('' is a quote), other punctuation as is.
 */
export function compileDateFormat(pattern: string): DateFormat {
  const pieces: DateFormat[] = [];
  for (let i = 0; i < pattern.length; ) {
    const c = pattern[i]!;
    if (c === "'") {
      let text = '';
      let j = i + 1;
      for (; j < pattern.length; j++) {
        if (pattern[j] === "'") {
          if (pattern[j + 1] === "'") {
            text += "'";
            j++;
          } else break;
        } else text += pattern[j];
      }
      if (j >= pattern.length && i + 1 !== j) throw new PrefixError(`!{timestamp:${pattern}}: unterminated quote`);
      if (j === i + 1 && pattern[j] === "'") text = "'";
      pieces.push(() => text);
      i = j + 1;
      continue;
    }
    if (!/[A-Za-z]/.test(c)) {
      pieces.push(() => c);
      i++;
      continue;
    }
    let n = 1;
    while (pattern[i + n] === c) n++;
    pieces.push(field(c, n, pattern));
    i += n;
  }
  return (date) => pieces.map((p) => p(date)).join('');
}

function field(letter: string, n: number, pattern: string): DateFormat {
  switch (letter) {
    case 'y':
    case 'u':
      return n === 2 ? (d) => pad(d.getUTCFullYear() % 100, 2) : (d) => pad(d.getUTCFullYear(), n);
    case 'M':
    case 'L':
      if (n >= 4) return (d) => MONTHS[d.getUTCMonth()]!;
      if (n === 3) return (d) => MONTHS[d.getUTCMonth()]!.slice(0, 3);
      return (d) => pad(d.getUTCMonth() + 1, n);
    case 'd':
      return (d) => pad(d.getUTCDate(), n);
    case 'D':
      return (d) => pad(Math.floor((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86_400_000) + 1, n);
    case 'H':
      return (d) => pad(d.getUTCHours(), n);
    case 'k':
      return (d) => pad(d.getUTCHours() || 24, n);
    case 'h':
      return (d) => pad(d.getUTCHours() % 12 || 12, n);
    case 'K':
      return (d) => pad(d.getUTCHours() % 12, n);
    case 'm':
      return (d) => pad(d.getUTCMinutes(), n);
    case 's':
      return (d) => pad(d.getUTCSeconds(), n);
    case 'S':
      return (d) => pad(d.getUTCMilliseconds(), 3).padEnd(n, '0').slice(0, n);
    case 'a':
      return (d) => (d.getUTCHours() < 12 ? 'AM' : 'PM');
    case 'E':
      return n >= 4 ? (d) => DAYS[d.getUTCDay()]! : (d) => DAYS[d.getUTCDay()]!.slice(0, 3);
    default:
      throw new PrefixError(`!{timestamp:${pattern}}: pattern letter ${JSON.stringify(letter)} is not supported (y M d D H h k K m s S a E; quote literal text with '...')`);
  }
}
