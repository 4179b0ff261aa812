import { existsSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { compileQuery, QueryError, type CompiledQuery } from '../partitioning/query.js';
import { flag, intIn, numberIn, oneOf, reportAt, text } from '../schema.js';
import type { TransformSettings, ProcessingSettings } from './types.js';
import { MiB } from '../units.js';

export type { TransformSettings, ProcessingSettings };

/** A path (relative to the working directory), or a built-in transform's name (`module: redact-fields`). */
export function resolveModule(module: string): string {
  if (/^[a-z0-9-]+$/.test(module)) return resolve(builtInTransformsDir(), `${module}.js`);
  return isAbsolute(module) ? module : resolve(process.cwd(), module);
}

// From src/transform/ (tests) this is transforms/; from dist/src/transform/, dist/transforms/ (the build copies them).
function builtInTransformsDir(): string {
  return fileURLToPath(new URL('../../transforms/', import.meta.url));
}

const lambdaParameters = z.strictObject({
  /** A local file exporting handler(event, context), or the name of a built-in transform. */
  module: text('a path to a .js/.mjs/.cjs file exporting handler, or a built-in transform name'),
  numberOfRetries: intIn(0, 300).default(3),
  bufferSizeInMBs: numberIn(0.2, 3).default(1),
  bufferIntervalInSeconds: intIn(60, 900).default(60),
  /** As a Lambda function's timeout. */
  timeoutSeconds: intIn(1, 900).default(60),
  /** Worker threads running the handler. */
  concurrency: intIn(1, 64).default(2),
  /** process.env of the handler, as a Lambda function's environment variables. */
  environment: z.record(z.string(), z.string(), { error: 'must map names to strings' }).default({}),
});

const metadataExtractionParameters = z.strictObject({
  metadataExtractionQuery: text('a jq query such as {customer: .customer_id}'),
  jsonParsingEngine: oneOf(['JQ-1.6'] as const).default('JQ-1.6'),
});

/** CloudFormation writes parameters as [{parameterName, parameterValue}]; this also takes a plain map. */
function normalizeParameters(raw: unknown): unknown {
  if (!Array.isArray(raw)) return raw ?? {};
  const out: Record<string, unknown> = {};
  for (const entry of raw) {
    if (entry && typeof entry === 'object' && 'parameterName' in entry) {
      const { parameterName, parameterValue } = entry as { parameterName: string; parameterValue: unknown };
      const key = parameterName.charAt(0).toLowerCase() + parameterName.slice(1);
      out[key] = typeof parameterValue === 'string' && /^-?\d+(\.\d+)?$/.test(parameterValue) ? Number(parameterValue) : parameterValue;
    }
  }
  return out;
}

const processor = z.strictObject({
  type: oneOf(['Lambda', 'MetadataExtraction'] as const),
  parameters: z.unknown(),
});

export const processingConfigurationSchema = z
  .strictObject({
    enabled: flag().default(false),
    processors: z.array(processor, { error: 'must be a list of processors' }).default([]),
  })
  .transform((value, ctx): ProcessingSettings | undefined => {
    if (!value.enabled) return undefined;
    let transform: TransformSettings | undefined;
    let metadataExtraction: CompiledQuery | undefined;
    value.processors.forEach((p, i) => {
      const path = ['processors', i, 'parameters'];
      const parameters = normalizeParameters(p.parameters);
      if (p.type === 'Lambda') {
        if (parameters && typeof parameters === 'object' && 'lambdaArn' in parameters) {
          ctx.addIssue({ code: 'custom', path: [...path, 'lambdaArn'], message: 'AWS Lambda is not called from here: give module (a local file exporting handler) instead' });
          return;
        }
        if (transform) ctx.addIssue({ code: 'custom', path: ['processors', i], message: 'only one Lambda processor is allowed' });
        const parsed = lambdaParameters.safeParse(parameters);
        // A missing module is reported beside every other problem of the processor, not instead of them.
        const module = (parameters as { module?: unknown } | undefined)?.module;
        const missing = typeof module === 'string' && module.length > 0 && !existsSync(resolveModule(module));
        if (missing) ctx.addIssue({ code: 'custom', path: [...path, 'module'], message: `no such file: ${resolveModule(module)}` });
        if (!parsed.success) return reportAt(ctx, path, parsed.error);
        if (missing) return;
        const file = resolveModule(parsed.data.module);
        transform = {
          module: file,
          numberOfRetries: parsed.data.numberOfRetries,
          bufferSizeBytes: Math.round(parsed.data.bufferSizeInMBs * MiB),
          bufferIntervalMs: parsed.data.bufferIntervalInSeconds * 1000,
          timeoutMs: parsed.data.timeoutSeconds * 1000,
          concurrency: parsed.data.concurrency,
          environment: parsed.data.environment,
        };
      } else {
        if (metadataExtraction) ctx.addIssue({ code: 'custom', path: ['processors', i], message: 'only one MetadataExtraction processor is allowed' });
        const parsed = metadataExtractionParameters.safeParse(parameters);
        if (!parsed.success) return reportAt(ctx, path, parsed.error);
        try {
          metadataExtraction = compileQuery(parsed.data.metadataExtractionQuery);
        } catch (err) {
          if (!(err instanceof QueryError)) throw err;
          ctx.addIssue({ code: 'custom', path: [...path, 'metadataExtractionQuery'], message: err.message });
        }
      }
    });
    return { ...(transform ? { transform } : {}), ...(metadataExtraction ? { metadataExtraction } : {}) };
  });

export const dynamicPartitioningConfigurationSchema = z.strictObject({
  enabled: flag().default(false),
  retryOptions: z.strictObject({ durationInSeconds: intIn(0, 7200).default(300) }).optional(),
});
