import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { addSecrets, redact, secretsIn } from './secrets.js';
import { readFile } from 'node:fs/promises';
import type { RedisSettings } from './redis/connection.js';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { destinationPlugins } from '../destinations/index.js';
import type { DestinationPlugin } from './destination.js';
import type { SourcePlugin } from './source.js';
import { sourcePlugins } from './sources/index.js';
import { interpolate } from './interpolate.js';
import { liftOver, pathAsWritten, type LiftOver } from './lift-over.js';
import { flag, formatIssues, intIn, matching, text } from './schema.js';

const sourceShape = Object.fromEntries(sourcePlugins.map((p) => [p.configKey, p.schema.optional()]));
const destinationShape = Object.fromEntries(destinationPlugins.map((p) => [p.configKey, p.schema.optional()]));

const deliveryStream = z
  .strictObject({
    deliveryStreamName: matching(/^[a-zA-Z0-9_.-]{1,64}$/, 'a delivery stream name (1–64 of a-z A-Z 0-9 _ . -)'),
    ...sourceShape,
    ...destinationShape,
  })
  .superRefine((value, ctx) => {
    const sources = sourcePlugins.filter((p) => (value as Record<string, unknown>)[p.configKey] !== undefined);
    const sourceKeys = sourcePlugins.map((p) => p.configKey).join(' | ');
    if (sources.length === 0) ctx.addIssue({ code: 'custom', path: [sourcePlugins[0]!.configKey], message: `is required (a delivery stream reads one source: ${sourceKeys})` });
    if (sources.length > 1) {
      ctx.addIssue({ code: 'custom', message: `has ${sources.length} sources (${sources.map((p) => p.configKey).join(', ')}); a delivery stream reads exactly one` });
    }
    const present = destinationPlugins.filter((p) => (value as Record<string, unknown>)[p.configKey] !== undefined);
    const keys = destinationPlugins.map((p) => p.configKey).join(' | ');
    if (present.length === 0) ctx.addIssue({ code: 'custom', message: `needs a destination (one of ${keys})` });
    if (present.length > 1) {
      ctx.addIssue({ code: 'custom', message: `has ${present.length} destinations (${present.map((p) => p.configKey).join(', ')}); a delivery stream has exactly one` });
    }
  });

export interface DeliveryStreamConfig {
  deliveryStreamName: string;
  /** What the stream's configuration says, and its transform's code: a reload restarts the stream when it changes. */
  fingerprint?: string;
  source: { plugin: SourcePlugin<unknown>; config: unknown };
  destination: { plugin: DestinationPlugin<unknown>; config: unknown };
}

const pemFile = text('a path to a PEM file').refine((path) => existsSync(path), { message: 'no such file' });

const serviceSchema = z.strictObject({
  redis: z
    .strictObject({
      url: matching(/^rediss?:\/\/\S+$/, 'a redis:// or rediss:// URL'),
      /** With rediss://: a CA for a self-signed server certificate, a client certificate (mutual TLS). */
      tls: z
        .strictObject({
          caFile: pemFile.optional(),
          certFile: pemFile.optional(),
          keyFile: pemFile.optional(),
          rejectUnauthorized: flag().default(true),
        })
        .optional(),
    })
    .superRefine((value, ctx) => {
      if (value.tls && !value.url.startsWith('rediss://')) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'is used only with a rediss:// url' });
      if (value.tls && !!value.tls.certFile !== !!value.tls.keyFile) ctx.addIssue({ code: 'custom', path: ['tls'], message: 'certFile and keyFile go together (a client certificate and its key)' });
    })
    .default({ url: 'redis://127.0.0.1:6379' }),
  runtime: z
    .strictObject({
      /** The process-wide read budget; defaults to twice the sum of every buffer's size. */
      memoryBudgetInMBs: intIn(16, 65_536).optional(),
      checkpointIntervalInMillis: intIn(100, 60_000).default(1_000),
      /** At SIGTERM, how long to keep trying to deliver what is buffered before giving up (uncheckpointed, so not lost). */
      shutdownTimeoutInSeconds: intIn(1, 3_600).default(60),
      /** A shard lease's lifetime: a worker that stops renewing loses its shards to the others after it. Renewed every third of it. */
      leaseDurationInSeconds: intIn(2, 300).default(10),
      /** Records that exhaust a destination's retries are parked here instead of the error output. */
      deadLetterQueue: z
        .strictObject({
          enabled: flag().default(false),
          maxSizeInMBs: intIn(1, 65_536).default(256),
          /** Also park records a transform failed (instead of writing them to the error output). */
          includeProcessingFailures: flag().default(false),
        })
        .default({ enabled: false, maxSizeInMBs: 256, includeProcessingFailures: false }),
      /** Health, stats, metrics, the DLQ over HTTP and Bull Board. */
      admin: z
        .strictObject({
          enabled: flag().default(false),
          host: text('a host to bind').default('127.0.0.1'),
          port: intIn(0, 65_535).default(8088),
          /** Every route but /healthz and /readyz then needs `Authorization: Bearer <token>`; without one, loopback only. */
          token: z.string({ error: 'must be a string' }).min(16, { message: 'must be at least 16 characters (write "${FIREHOSE_ADMIN_TOKEN}" and set it)' }).optional(),
        })
        .default({ enabled: false, host: '127.0.0.1', port: 8088 }),
    })
    .default({
      checkpointIntervalInMillis: 1_000,
      shutdownTimeoutInSeconds: 60,
      leaseDurationInSeconds: 10,
      deadLetterQueue: { enabled: false, maxSizeInMBs: 256, includeProcessingFailures: false },
      admin: { enabled: false, host: '127.0.0.1', port: 8088 },
    }),
  deliveryStreams: z
    .array(deliveryStream, { error: 'must be a list of delivery streams' })
    .min(1, { message: 'needs at least one delivery stream' }),
});

export interface ServiceConfig {
  redis: RedisSettings;
  runtime: z.output<typeof serviceSchema>['runtime'];
  deliveryStreams: DeliveryStreamConfig[];
  /** CloudFormation properties mapped or dropped on the way in, one line each with its path. */
  notes?: string[];
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(
    readonly source: string,
    problems: string[],
  ) {
    super(redact(`${source}: ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n  ${problems.join('\n  ')}`));
    this.name = 'ConfigError';
    this.problems = problems.map(redact);
  }
}

/** Parses, interpolates and validates a configuration; throws ConfigError listing every problem with its path. */
export function parseConfig(
  yamlText: string,
  env: Record<string, string | undefined> = process.env,
  source = 'config',
): ServiceConfig {
  const document = parseDocument(yamlText, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    const problems = document.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`);
    // YAML reads `{` of `${…}` as the start of a nested mapping inside `{ … }`.
    if (/\{[^}\n]*\$\{/.test(yamlText)) problems.push('YAML: an unquoted ${…} inside a { … } flow mapping is read as YAML, not as a variable: quote it ("${SIZE:-5}") or write that mapping in block style');
    throw new ConfigError(source, problems);
  }
  const problems: string[] = [];
  let document_: unknown;
  try {
    // Aliases are bounded (yaml's maxAliasCount): an alias bomb is refused, not expanded.
    document_ = document.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(source, [`YAML: ${(err as Error).message} (aliases expand to too much; write the values out)`]);
  }
  const lifted: LiftOver = { notes: [], problems };
  const raw = liftOver(interpolate(document_, env, problems), lifted);
  // Known before anything can echo them: every later message, log line and response is redacted.
  addSecrets(secretsIn(raw));
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, ['(top level): must be a mapping with deliveryStreams']);
  }
  const parsed = serviceSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    // A value whose variable was missing fails validation too; its root cause is already listed.
    const unset = problems.map((p) => p.slice(0, p.indexOf(': ') + 2));
    problems.push(...formatIssues(parsed.error).map((p) => pathAsWritten(lifted, p)).filter((p) => !unset.some((prefix) => p.startsWith(prefix))));
  }
  if (problems.length > 0 || !parsed.success) throw new ConfigError(source, problems);

  const names = new Set<string>();
  const streams = parsed.data.deliveryStreams.map((stream, i) => {
    if (names.has(stream.deliveryStreamName)) {
      problems.push(`deliveryStreams[${i}].deliveryStreamName: ${JSON.stringify(stream.deliveryStreamName)} is used by another delivery stream`);
    }
    names.add(stream.deliveryStreamName);
    const fields = stream as Record<string, unknown>;
    const plugin = destinationPlugins.find((p) => fields[p.configKey] !== undefined)!;
    const sourcePlugin = sourcePlugins.find((p) => fields[p.configKey] !== undefined)!;
    const fingerprint = createHash('sha256').update(JSON.stringify((raw as { deliveryStreams: unknown[] }).deliveryStreams[i]));
    const module = plugin.pipeline(fields[plugin.configKey]).processing?.transform?.module;
    if (module) fingerprint.update(readFileSync(module));
    return {
      deliveryStreamName: stream.deliveryStreamName,
      fingerprint: fingerprint.digest('hex'),
      source: { plugin: sourcePlugin, config: fields[sourcePlugin.configKey] },
      destination: { plugin, config: fields[plugin.configKey] },
    };
  });
  if (problems.length > 0) throw new ConfigError(source, problems);
  return { redis: parsed.data.redis, runtime: parsed.data.runtime, deliveryStreams: streams, notes: lifted.notes };
}

export async function loadConfig(path: string, env: Record<string, string | undefined> = process.env): Promise<ServiceConfig> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    throw new ConfigError(path, [`cannot read the file: ${(err as Error).message}`]);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const at = firstInvalidUtf8(bytes);
    throw new ConfigError(path, [`is not UTF-8 text: byte ${at} (line ${bytes.subarray(0, at).toString('latin1').split('\n').length}) is 0x${bytes[at]?.toString(16).padStart(2, '0')}; save the file as UTF-8`]);
  }
  return parseConfig(text, env, path);
}

/** The offset of the first byte that starts no valid UTF-8 sequence. */
function firstInvalidUtf8(bytes: Buffer): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let lo = 0;
  let hi = bytes.length;
  // The longest valid prefix, by halving (a cut inside a sequence is tried with its end).
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    try {
      decoder.decode(bytes.subarray(0, mid));
      lo = mid;
    } catch {
      try {
        decoder.decode(bytes.subarray(0, Math.min(bytes.length, mid + 3)));
        lo = mid;
      } catch {
        hi = mid - 1;
      }
    }
  }
  return lo;
}
