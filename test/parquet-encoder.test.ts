import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Acknowledgements, ShardProgress } from '../src/ack.js';
import { ByteBudget } from '../src/budget.js';
import { Holding } from '../src/buffer.js';
import { ParquetEncoder } from '../src/conversion/encoder.js';
import { ConversionPool } from '../src/conversion/pool.js';
import { encodeRowGroup } from '../src/conversion/row-group.js';
import { parseType, type SessionSpec } from '../src/conversion/types.js';
import { silentLogger } from '../src/log.js';
import type { SourceRecord } from '../src/records.js';
import { waitFor } from './helpers/harness.js';

const MiB = 1024 * 1024;
const spec: SessionSpec = {
  columns: [
    { name: 'n', type: parseType('bigint'), nullable: false },
    { name: 'host', type: parseType('string'), nullable: true },
    { name: 'message', type: parseType('string'), nullable: true },
  ],
  deserializer: { caseInsensitive: true, columnToJsonKeyMappings: {}, convertDotsInJsonKeysToUnderscores: false },
  compression: 'SNAPPY',
  pageSizeBytes: 64 * 1024,
  rowGroupBytes: MiB,
  enableDictionaryCompression: true,
};

const MALFORMED_AT = 12_345;
/** A record larger than a whole row group's input (Kinesis takes records up to 10 MiB). */
const LARGER_THAN_A_ROW_GROUP_AT = 40_000;
const LARGE_MESSAGE = 'm'.repeat(MiB + 4096);
function records(count: number): SourceRecord[] {
  const shard = new ShardProgress('shard-1', undefined, { segmentReleased() {}, progressed() {} });
  const segment = shard.open(String(count), count, 0);
  return Array.from({ length: count }, (_, n) => ({
    data: Buffer.from(n === MALFORMED_AT ? '{"n": "not a number"}' : JSON.stringify({ n, host: `host-${n % 7}`, message: n === LARGER_THAN_A_ROW_GROUP_AT ? LARGE_MESSAGE : `request ${n} served in ${n % 97} ms` })),
    partitionKey: 'k',
    shardId: 'shard-1',
    sequenceNumber: String(n),
    subSequenceNumber: 0,
    approximateArrivalTimestamp: 0,
    segment,
  }));
}

async function readBack(file: Buffer): Promise<{ n: number[]; longest: number; rowGroups: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'firehose-parquet-encoder-'));
  const path = join(dir, 'object.parquet');
  await writeFile(path, file);
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    const rows = (await connection.runAndReadAll(`SELECT CAST(n AS INTEGER) AS n, length(message) AS m FROM read_parquet('${path}')`)).getRowObjectsJson();
    const groups = (await connection.runAndReadAll(`SELECT count(DISTINCT row_group_id) AS g FROM parquet_metadata('${path}')`)).getRowObjectsJson();
    return { n: rows.map((r) => Number(r.n)), longest: Math.max(...rows.map((r) => Number(r.m))), rowGroups: Number(groups[0]!.g) };
  } finally {
    connection.closeSync();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('Parquet encoder: row groups converted on every thread, the budget holding what memory does', () => {
  let pool: ConversionPool;
  beforeAll(() => {
    pool = new ConversionPool(2, silentLogger);
    pool.start();
  });
  afterAll(async () => {
    await pool.close();
  });

  it('a file of many row groups encoded on two threads at once reads back whole and in order (one record larger than a row group among them); its buffer holds encoded bytes once each row group is converted', async () => {
    const budget = new ByteBudget(256 * MiB);
    const holding = new Holding(budget);
    const acks = new Acknowledgements();
    const failed: Array<{ n: string; message: string }> = [];
    const encoder = new ParquetEncoder(pool, spec, acks, holding, (record, message) => failed.push({ n: record.sequenceNumber, message }));
    const input = records(80_000);
    let raw = 0;
    for (const record of input) {
      // What a source does: it takes the bytes it reads; the buffer holds them from then on.
      budget.take(record.data.length);
      holding.adopt(record.data.length);
      acks.add(record.segment);
      encoder.append(record);
      raw += record.data.length;
    }
    expect(raw).toBeGreaterThan(4 * MiB);
    await waitFor(() => budget.compressingNow === 0 && holding.bytes < raw / 2, 30_000, 'the row groups handed to the threads converted');
    // Only the last partial row group is still raw; the rest are held as encoded bytes.
    expect(holding.bytes).toBeLessThan(MiB + raw / 4);
    expect(budget.held).toBe(holding.bytes);

    const file = Buffer.concat(await encoder.finish());
    expect(file.subarray(0, 4).toString()).toBe('PAR1');
    const { n, longest, rowGroups } = await readBack(file);
    expect(rowGroups).toBeGreaterThanOrEqual(4);
    expect(longest).toBe(LARGE_MESSAGE.length);
    expect(n).toEqual(input.map((_, i) => i).filter((i) => i !== MALFORMED_AT));
    expect(failed).toEqual([{ n: String(MALFORMED_AT), message: expect.stringMatching(/^n: /) as unknown as string }]);
    holding.release();
    expect(budget.held).toBe(0);
  });

  it('a row group the thread cannot write fails the file with the reason, and its bytes are no longer counted as being converted', async () => {
    const budget = new ByteBudget(64 * MiB);
    const holding = new Holding(budget);
    const unwritable: SessionSpec = { ...spec, compression: 'LZO' as SessionSpec['compression'] };
    const encoder = new ParquetEncoder(pool, unwritable, new Acknowledgements(), holding, () => undefined);
    for (const record of records(100)) {
      budget.take(record.data.length);
      holding.adopt(record.data.length);
      encoder.append(record);
    }
    await expect(encoder.finish()).rejects.toThrow(/^Parquet conversion failed: .*LZO/);
    expect(budget.compressingNow).toBe(0);
    holding.release();
    expect(budget.held).toBe(0);
  });
});

describe('Parquet row groups: EnableDictionaryCompression', () => {
  const lowCardinality = () => {
    const lines = Array.from({ length: 5_000 }, (_, n) => Buffer.from(JSON.stringify({ n, host: `host-${n % 7}`, message: `request ${n % 3}` })));
    const ends = new Uint32Array(lines.length);
    let at = 0;
    lines.forEach((line, i) => (ends[i] = at += line.length));
    return { payload: Buffer.concat(lines), ends };
  };
  const encodingsOf = (group: ReturnType<typeof encodeRowGroup>) =>
    group.rowGroup!.columns.map((c) => ({ encodings: c.meta_data!.encodings, dictionary: c.meta_data!.dictionary_page_offset !== undefined }));

  it('true: columns of few values are dictionary-encoded', () => {
    const { payload, ends } = lowCardinality();
    const [, host, message] = encodingsOf(encodeRowGroup(spec, payload, ends));
    expect(host).toMatchObject({ dictionary: true, encodings: expect.arrayContaining(['RLE_DICTIONARY']) });
    expect(message).toMatchObject({ dictionary: true });
  });

  it('false: a file whose columns, a struct field too, have no dictionary page and no dictionary-encoded page, and reads back whole', async () => {
    const plain: SessionSpec = {
      ...spec,
      enableDictionaryCompression: false,
      columns: [...spec.columns, { name: 'ok', type: parseType('boolean'), nullable: true }, { name: 'origin', type: parseType('struct<region:string>'), nullable: true }],
    };
    const pool = new ConversionPool(1, silentLogger);
    pool.start();
    const dir = await mkdtemp(join(tmpdir(), 'firehose-parquet-plain-'));
    try {
      const budget = new ByteBudget(64 * MiB);
      const holding = new Holding(budget);
      const encoder = new ParquetEncoder(pool, plain, new Acknowledgements(), holding, () => undefined);
      for (let n = 0; n < 5_000; n++) {
        const data = Buffer.from(JSON.stringify({ n, host: `host-${n % 7}`, message: `request ${n % 3}`, ok: n % 2 === 0, origin: { region: `r${n % 2}` } }));
        budget.take(data.length);
        holding.adopt(data.length);
        encoder.append({ ...records(1)[0]!, data });
      }
      const path = join(dir, 'plain.parquet');
      await writeFile(path, Buffer.concat(await encoder.finish()));
      holding.release();
      const db = await DuckDBInstance.create(':memory:');
      const connection = await db.connect();
      try {
        const chunks = (await connection.runAndReadAll(`SELECT path_in_schema AS p, encodings AS e, dictionary_page_offset AS d FROM parquet_metadata('${path}')`)).getRowObjectsJson();
        expect(chunks.map((c) => c.p)).toEqual(expect.arrayContaining(['n', 'host', 'message', 'ok', expect.stringMatching(/region/)]));
        for (const chunk of chunks) {
          expect(chunk.d).toBeNull();
          expect(String(chunk.e)).not.toMatch(/DICTIONARY/);
        }
        const rows = (await connection.runAndReadAll(`SELECT count(*) AS rows, count(DISTINCT host) AS hosts, sum(CASE WHEN ok THEN 1 ELSE 0 END) AS oks, count(DISTINCT origin.region) AS regions FROM read_parquet('${path}')`)).getRowObjectsJson();
        expect(rows[0]).toEqual({ rows: '5000', hosts: '7', oks: '2500', regions: '2' });
      } finally {
        connection.closeSync();
      }
    } finally {
      await pool.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
