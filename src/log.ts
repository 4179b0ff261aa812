import { pino, type Logger as Pino } from 'pino';
import { REDACTED, SECRET_KEY, redact } from './secrets.js';

/**
 * Logs through pino: one JSON object per line on stderr (time, level, msg, fields) for a log
 * pipeline, or a readable line per event on a terminal. Errors carry their stack, cause chain and
 * AWS error code; every configured secret is redacted from every line.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
export const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];
export type LogFormat = 'json' | 'pretty';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** A log level or format the environment asks for that does not exist: refused, not guessed. */
export class LogSettingError extends Error {}

/** FIREHOSE_LOG_LEVEL, or the command's own default when it is unset. */
export function levelFromEnv(fallback: Level, env: NodeJS.ProcessEnv = process.env): Level {
  const asked = env.FIREHOSE_LOG_LEVEL;
  if (asked === undefined || asked === '') return fallback;
  const level = asked.toLowerCase() as Level;
  if (!LEVELS.includes(level)) throw new LogSettingError(`FIREHOSE_LOG_LEVEL must be one of ${LEVELS.join(', ')}; got ${JSON.stringify(asked)}`);
  return level;
}

/** FIREHOSE_LOG_FORMAT: json or pretty; unset, pretty on a terminal and JSON otherwise. */
export function formatFromEnv(env: NodeJS.ProcessEnv = process.env, terminal = process.stderr.isTTY === true): LogFormat {
  const asked = env.FIREHOSE_LOG_FORMAT;
  if (asked === undefined || asked === '') return terminal ? 'pretty' : 'json';
  if (asked !== 'json' && asked !== 'pretty') throw new LogSettingError(`FIREHOSE_LOG_FORMAT must be json or pretty; got ${JSON.stringify(asked)}`);
  return asked;
}

export interface LoggerOptions {
  readonly format?: LogFormat;
  /** Where each line goes, without its newline (stderr by default). */
  readonly write?: (line: string) => void;
}

export function createLogger(level: Level = levelFromEnv('info'), base: Record<string, unknown> = {}, write?: (line: string) => void, options: LoggerOptions = {}): Logger {
  if (!LEVELS.includes(level)) throw new LogSettingError(`log level must be one of ${LEVELS.join(', ')}; got ${JSON.stringify(level)}`);
  const format = options.format ?? formatFromEnv();
  const out = write ?? options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const colour = write === undefined && options.write === undefined && process.stderr.isTTY === true;
  const destination = {
    write(chunk: string) {
      const line = redact(chunk.endsWith('\n') ? chunk.slice(0, -1) : chunk);
      out(format === 'pretty' ? pretty(line, colour) : line);
    },
  };
  const root = pino(
    {
      level,
      base: null,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return adapt(Object.keys(base).length > 0 ? root.child(fields(base)) : root);
}

function adapt(p: Pino): Logger {
  return {
    debug: (msg, f) => (f ? p.debug(fields(f), msg) : p.debug(msg)),
    info: (msg, f) => (f ? p.info(fields(f), msg) : p.info(msg)),
    warn: (msg, f) => (f ? p.warn(fields(f), msg) : p.warn(msg)),
    error: (msg, f) => (f ? p.error(fields(f), msg) : p.error(msg)),
    child: (f) => adapt(p.child(fields(f))),
  };
}

/** Errors serialized wherever they appear among the fields; secret-named fields blanked. */
function fields(input: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (SECRET_KEY.test(key) && value !== undefined && !/file$|path$/i.test(key)) out[key] = REDACTED;
    else out[key] = value instanceof Error ? serializeError(value) : value;
  }
  return out;
}

export interface SerializedError {
  type: string;
  message: string;
  /** A Node system error's code (ECONNREFUSED) or an AWS service error's name (ProvisionedThroughputExceededException). */
  code?: string;
  httpStatusCode?: number;
  requestId?: string;
  stack?: string;
  cause?: SerializedError | unknown;
  errors?: Array<SerializedError | unknown>;
}

/** What an operator needs of an error: its type, message, code, AWS status and request id, stack, and what caused it. */
export function serializeError(err: Error, depth = 0): SerializedError {
  const e = err as Error & { code?: unknown; $metadata?: { httpStatusCode?: number; requestId?: string }; $fault?: unknown; errors?: unknown[] };
  const out: SerializedError = { type: err.name, message: err.message };
  if (typeof e.code === 'string') out.code = e.code;
  else if (e.$metadata !== undefined && err.name !== 'Error') out.code = err.name;
  if (e.$metadata?.httpStatusCode !== undefined) out.httpStatusCode = e.$metadata.httpStatusCode;
  if (e.$metadata?.requestId) out.requestId = e.$metadata.requestId;
  if (err.stack) out.stack = err.stack;
  if (depth < 5 && err.cause !== undefined) out.cause = err.cause instanceof Error ? serializeError(err.cause, depth + 1) : err.cause;
  if (depth < 5 && Array.isArray(e.errors)) out.errors = e.errors.map((x) => (x instanceof Error ? serializeError(x, depth + 1) : x));
  return out;
}

const LEVEL_COLOUR: Record<string, string> = { debug: '\x1b[90m', info: '\x1b[36m', warn: '\x1b[33m', error: '\x1b[31m' };

/** One JSON log line as a person reads it: time, level, message, key=value, then any error's stack and causes. */
function pretty(line: string, colour: boolean): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const { time, level, msg, ...rest } = entry;
  const label = String(level).toUpperCase().padEnd(5);
  const head = `${String(time).slice(11, 23)} ${colour ? `${LEVEL_COLOUR[String(level)] ?? ''}${label}\x1b[0m` : label} ${String(msg)}`;
  const pairs: string[] = [];
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(rest)) {
    if (isSerializedError(value)) {
      pairs.push(`${key}=${JSON.stringify(value.code ? `${value.code}: ${value.message}` : value.message)}`);
      stacks.push(...errorLines(value, '    '));
    } else {
      pairs.push(`${key}=${typeof value === 'string' && /^[\w./:@-]+$/.test(value) ? value : JSON.stringify(value)}`);
    }
  }
  return [pairs.length > 0 ? `${head}  ${pairs.join(' ')}` : head, ...stacks].join('\n');
}

function isSerializedError(value: unknown): value is SerializedError {
  return typeof value === 'object' && value !== null && typeof (value as SerializedError).type === 'string' && typeof (value as SerializedError).message === 'string';
}

function errorLines(err: SerializedError, indent: string): string[] {
  const lines = (err.stack ?? `${err.type}: ${err.message}`).split('\n').map((l) => indent + l.trim());
  if (isSerializedError(err.cause)) lines.push(`${indent}caused by:`, ...errorLines(err.cause, indent + '  '));
  return lines;
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child() {
    return silentLogger;
  },
};
