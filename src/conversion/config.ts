import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { flag, intIn, oneOf, reportAt, text } from '../schema.js';
import { parseType, TypeError_, type Column } from './types.js';
import type { SessionSpec } from './types.js';
import { MiB } from '../units.js';

/**
 * Row groups are cut at this much JSON input at most, whatever blockSizeBytes says: a row group's
 * values are held as JS values until written (several times their JSON size). Measured with a
 * 128 MB buffer: 8 MiB → 51 MiB/s, peak RSS 819 MiB; 32 MiB → 39 MiB/s, 1131 MiB (npm run bench).
 */
const MAX_ROW_GROUP_INPUT_BYTES = 8 * MiB;

const column = z.strictObject({
  name: z.string({ error: 'must be a column name' }).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { message: 'must be letters, digits and _' }),
  type: text('a type such as string, bigint, decimal(10,2), array<string>, struct<a:int>'),
  nullable: flag().default(true),
});

const columns = z.array(column, { error: 'must be a list of {name, type}' }).min(1, { message: 'needs at least one column' });

const openXJsonSerDe = z
  .strictObject({
    caseInsensitive: flag().default(true),
    columnToJsonKeyMappings: z.record(z.string(), z.string(), { error: 'must map column names to JSON keys' }).default({}),
    convertDotsInJsonKeysToUnderscores: flag().default(false),
  })
  .default({ caseInsensitive: true, columnToJsonKeyMappings: {}, convertDotsInJsonKeysToUnderscores: false });

const parquetSerDe = z
  .strictObject({
    compression: oneOf(['SNAPPY', 'GZIP', 'UNCOMPRESSED'] as const).default('SNAPPY'),
    blockSizeBytes: intIn(64 * MiB, 1024 * MiB).default(256 * MiB),
    pageSizeBytes: intIn(64 * 1024, 64 * MiB).default(MiB),
    enableDictionaryCompression: flag().default(true),
    /** Accepted for compatibility; row groups are not padded to HDFS blocks. */
    maxPaddingBytes: intIn(0, 1024 * MiB).default(0),
    /** Accepted for compatibility; data pages are written as V1, which every reader opens. */
    writerVersion: oneOf(['V1', 'V2'] as const).default('V1'),
  })
  .default({ compression: 'SNAPPY', blockSizeBytes: 256 * MiB, pageSizeBytes: MiB, enableDictionaryCompression: true, maxPaddingBytes: 0, writerVersion: 'V1' });

export const dataFormatConversionConfigurationSchema = z
  .strictObject({
    enabled: flag().default(true),
    inputFormatConfiguration: z
      .strictObject({ deserializer: z.strictObject({ openXJsonSerDe: openXJsonSerDe.optional(), hiveJsonSerDe: z.unknown().optional() }) })
      .optional(),
    outputFormatConfiguration: z.strictObject({ serializer: z.strictObject({ parquetSerDe: parquetSerDe.optional(), orcSerDe: z.unknown().optional() }) }).optional(),
    /** In place of a Glue table: the columns, inline or in a YAML/JSON file. */
    schema: z.union([columns, z.strictObject({ file: text('a path to a YAML or JSON list of columns') })], {
      error: 'must be a list of columns ({name, type, nullable}) or {file: path}',
    }),
    schemaConfiguration: z.unknown().optional(),
  })
  .transform((value, ctx): SessionSpec | undefined => {
    if (!value.enabled) return undefined;
    if (value.schemaConfiguration !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['schemaConfiguration'], message: 'Glue tables are not read from here: give schema: (a list of {name, type}) or schema: {file: path}' });
    }
    if (value.inputFormatConfiguration?.deserializer.hiveJsonSerDe !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['inputFormatConfiguration', 'deserializer', 'hiveJsonSerDe'], message: 'only openXJsonSerDe is supported' });
    }
    if (value.outputFormatConfiguration?.serializer.orcSerDe !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['outputFormatConfiguration', 'serializer', 'orcSerDe'], message: 'only parquetSerDe is supported (ORC is not written)' });
    }
    let raw: unknown = value.schema;
    let base: (string | number)[] = ['schema'];
    if (!Array.isArray(value.schema)) {
      const path = resolve(process.cwd(), value.schema.file);
      try {
        raw = parseYaml(readFileSync(path, 'utf8'));
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['schema', 'file'], message: `cannot read ${path}: ${(err as Error).message}` });
        return undefined;
      }
      const parsed = columns.safeParse(raw);
      if (!parsed.success) {
        reportAt(ctx, ['schema', 'file', path], parsed.error);
        return undefined;
      }
      raw = parsed.data;
      base = ['schema', 'file', path];
    }
    const list = raw as Array<{ name: string; type: string; nullable: boolean }>;
    const out: Column[] = [];
    const seen = new Set<string>();
    list.forEach((c, i) => {
      if (seen.has(c.name.toLowerCase())) ctx.addIssue({ code: 'custom', path: [...base, i, 'name'], message: `${c.name} appears twice` });
      seen.add(c.name.toLowerCase());
      try {
        out.push({ name: c.name, type: parseType(c.type), nullable: c.nullable });
      } catch (err) {
        if (!(err instanceof TypeError_)) throw err;
        ctx.addIssue({ code: 'custom', path: [...base, i, 'type'], message: err.message });
      }
    });
    const serde = value.outputFormatConfiguration?.serializer.parquetSerDe ?? parquetSerDe.parse(undefined);
    const openx = value.inputFormatConfiguration?.deserializer.openXJsonSerDe ?? openXJsonSerDe.parse(undefined);
    return {
      columns: out,
      deserializer: openx,
      compression: serde.compression,
      pageSizeBytes: serde.pageSizeBytes,
      rowGroupBytes: Math.min(serde.blockSizeBytes, MAX_ROW_GROUP_INPUT_BYTES),
      enableDictionaryCompression: serde.enableDictionaryCompression,
    };
  });
