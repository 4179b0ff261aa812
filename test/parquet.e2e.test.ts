import { mkdtemp, writeFile } from 'node:fs/promises';
import { freePort } from '../src/dev/peers.js';
import { firehose } from './helpers/cli.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { replay } from '../src/replay/replay.js';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { SequenceTracker, checkpoints, createStream, putAll, readObjects, serviceYaml, streamYaml, suitePeers, waitFor } from './helpers/harness.js';

const BUCKET = 'columnar';

const conversion = `
      dataFormatConversionConfiguration:
        enabled: true
        inputFormatConfiguration:
          deserializer:
            openXJsonSerDe: { columnToJsonKeyMappings: { city: "address.city" } }
        outputFormatConfiguration:
          serializer:
            parquetSerDe: { compression: GZIP }
        schema:
          - { name: id, type: bigint, nullable: false }
          - { name: name, type: string }
          - { name: small, type: int }
          - { name: score, type: double }
          - { name: ratio, type: float }
          - { name: active, type: boolean }
          - { name: ts, type: timestamp }
          - { name: day, type: date }
          - { name: amount, type: "decimal(12,2)" }
          - { name: blob, type: binary }
          - { name: tags, type: "array<string>" }
          - { name: point, type: "struct<x:double,y:double,label:string>" }
          - { name: attrs, type: "map<string,bigint>" }
          - { name: useragent, type: string }
          - { name: city, type: string }`;

/** A record exercising every type and the documented coercions; `expected` is the row a reader must see. */
function sample(i: number) {
  const ts = Date.UTC(2026, 0, 1) + i * 1_000;
  // Some ids past 2^53, written as JSON numbers: a float64 would turn …993 into …992.
  const big = i % 1000 === 999 ? (9007199254740993n + BigInt(i - 999)).toString() : undefined;
  const record = {
    id: big ? '@big@' : i % 3 === 0 ? String(i) : i, // bigint from a number or a numeric string
    name: i % 7 === 0 ? null : `user-${i}`,
    small: i % 2 ? String(i % 1000) : i % 1000, // int from "42" or 42
    score: i * 0.5,
    ratio: 0.25,
    active: i % 5 === 0 ? 'true' : i % 2 === 0,
    ts: i % 2 ? new Date(ts).toISOString() : ts, // ISO-8601 or epoch millis
    day: `2026-02-${String((i % 28) + 1).padStart(2, '0')}`,
    amount: i % 2 ? `${i}.${String(i % 100).padStart(2, '0')}` : i + 0.5, // exact decimal from text or number
    blob: `b${i}`,
    tags: i % 11 === 0 ? null : [`t${i % 3}`, `t${i % 5}`],
    point: { x: i, y: -i, label: i % 4 === 0 ? null : `p${i}` },
    attrs: { a: i, b: String(i * 2) },
    UserAgent: `agent-${i % 9}`, // case-insensitive match to column useragent
    address: { city: `city-${i % 13}` }, // columnToJsonKeyMappings
    ignored: 'not a column',
  };
  const expected = {
    id: big ?? String(i),
    name: i % 7 === 0 ? null : `user-${i}`,
    small: i % 1000,
    score: i * 0.5,
    ratio: 0.25,
    active: i % 5 === 0 ? true : i % 2 === 0,
    ts: String(ts),
    day: `2026-02-${String((i % 28) + 1).padStart(2, '0')}`,
    amount: i % 2 ? `${i}.${String(i % 100).padStart(2, '0')}` : `${i}.50`,
    blob: Buffer.from(`b${i}`).toString('hex').toUpperCase(),
    tags: i % 11 === 0 ? null : [`t${i % 3}`, `t${i % 5}`],
    point: { x: i, y: -i || 0, label: i % 4 === 0 ? null : `p${i}` }, // JSON has no -0
    attrs: [{ key: 'a', value: String(i) }, { key: 'b', value: String(i * 2) }],
    useragent: `agent-${i % 9}`,
    city: `city-${i % 13}`,
  };
  return { record: JSON.stringify(record).replace('"@big@"', big ?? '"@big@"'), expected };
}

const MALFORMED = [
  'not json at all',
  JSON.stringify({ name: 'no id' }), // id is not nullable
  JSON.stringify({ id: 5, small: 'twelve' }),
  JSON.stringify({ id: 6, amount: '12345678901.999' }), // does not fit decimal(12,2)
  JSON.stringify({ id: 7, day: '07/04/2026' }),
  JSON.stringify([1, 2, 3]),
];

async function readParquet(files: Buffer[], sql: (source: string) => string) {
  const dir = await mkdtemp(join(tmpdir(), 'firehose-parquet-'));
  const paths: string[] = [];
  for (const [i, body] of files.entries()) {
    const path = join(dir, `${i}.parquet`);
    await writeFile(path, body);
    paths.push(path);
  }
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  const source = `read_parquet([${paths.map((p) => `'${p}'`).join(', ')}])`;
  const reader = await connection.runAndReadAll(sql(source));
  const rows = reader.getRowObjectsJson();
  connection.closeSync();
  return rows;
}

describe('record format conversion: JSON → Parquet, read back by DuckDB', () => {
  const peers = suitePeers([BUCKET]);

  it('converts 50,000 records of every type; 1% malformed land as format-conversion-failed with their bytes', async () => {
    await createStream(peers.kinesisClient, 'events', 2);
    await createStream(peers.kinesisClient, 'split', 1);
    const config = parseConfig(
      serviceYaml(peers, [
        { deliveryStreamName: 'events', streamName: 'events', bucket: BUCKET, sizeInMBs: 64, compressionFormat: 'UNCOMPRESSED', s3Extra: conversion },
        {
          deliveryStreamName: 'split',
          streamName: 'split',
          bucket: BUCKET,
          sizeInMBs: 64,
          compressionFormat: 'UNCOMPRESSED',
          prefix: 'split/c=!{partitionKeyFromQuery:c}/',
          errorOutputPrefix: 'split-errors/!{firehose:error-output-type}/',
          s3Extra: `${conversion}
      dynamicPartitioningConfiguration: { enabled: true }
      processingConfiguration:
        enabled: true
        processors:
          - { type: MetadataExtraction, parameters: { metadataExtractionQuery: "{c: .city | ascii_upcase}" } }`.replace('address.city', 'city_src'),
        },
      ]),
    );
    const service = await startService(config, { log: silentLogger });
    const samples = Array.from({ length: 49_500 }, (_, i) => sample(i));
    const malformed = Array.from({ length: 500 }, (_, i) => MALFORMED[i % MALFORMED.length]!.replace('"id":5', `"id":${5 + i}`) + ' '.repeat(i % 3));
    const input = [...samples.map((s) => s.record), ...malformed].map((r, i) => ({ data: Buffer.from(r), partitionKey: `k${i}` }));
    const sequences = new SequenceTracker();
    (await putAll(peers.kinesisClient, 'events', input)).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));
    const split = Array.from({ length: 300 }, (_, i) => JSON.stringify({ id: i, city: `c${i % 3}`, city_src: `c${i % 3}` }));
    await putAll(peers.kinesisClient, 'split', split.map((r, i) => ({ data: Buffer.from(r), partitionKey: `s${i}` })));
    await waitFor(() => service.streams[0]!.stats.recordsRead === 50_000 && service.streams[1]!.stats.recordsRead === 300, 60_000, 'every record read');
    expect(await service.stop()).toBe(true);

    const objects = await readObjects(peers.s3Client, BUCKET, 'events/');
    expect(objects.length).toBeGreaterThan(0);
    for (const o of objects) expect(o.key).toMatch(/^events\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/events-1-.+\.parquet$/);
    const rows = await readParquet(
      objects.map((o) => o.body),
      (source) =>
        `SELECT CAST(id AS VARCHAR) AS id, name, small, score, ratio, active, CAST(epoch_ms(ts) AS VARCHAR) AS ts,
                CAST(day AS VARCHAR) AS day, CAST(amount AS VARCHAR) AS amount, hex(blob) AS blob, tags, point, attrs, useragent, city
         FROM ${source} ORDER BY id`,
    );
    expect(rows).toHaveLength(49_500);
    const expected = samples.map((s) => s.expected).sort((a, b) => Number(a.id) - Number(b.id));
    rows.sort((a, b) => Number(a.id) - Number(b.id));
    for (let i = 0; i < expected.length; i++) expect(rows[i]).toEqual(expected[i]);
    // Each Parquet object's manifest lists its rows' records (the malformed ones taken out), with their positions.
    const manifests = (await readObjects(peers.s3Client, BUCKET, '_manifests/')).filter((m) => m.key.includes('/events/'));
    expect(manifests).toHaveLength(objects.length);
    let described = 0;
    for (const m of manifests) {
      const manifest = JSON.parse(m.body.toString('utf8')) as { encoding: string; records: number; columns: { sequenceNumber: string[]; partitionKey: string[] } };
      expect(manifest.encoding).toBe('PARQUET');
      expect(manifest.columns.sequenceNumber).toHaveLength(manifest.records);
      described += manifest.records;
    }
    expect(described).toBe(49_500);
    // A replay says it cannot read Parquet back, and what to replay instead.
    await expect(replay(config, { from: `s3://${BUCKET}/events/`, start: new Date(Date.now() - 3_600_000), end: new Date(Date.now() + 60_000), to: 'events' })).rejects.toThrow(/is Parquet: .*Replay the source record backup .* or the stream's own Kinesis source with --kinesis-from/);

    const failed = (await readObjects(peers.s3Client, BUCKET, 'events-errors/format-conversion-failed/'))
      .flatMap((o) => o.body.toString().split('\n').slice(0, -1))
      .map((l) => JSON.parse(l) as { rawData: string; errorCode: string; errorMessage: string; sequenceNumber: string });
    expect(failed.map((f) => Buffer.from(f.rawData, 'base64').toString()).sort()).toEqual([...malformed].sort());
    expect(new Set(failed.map((f) => f.errorCode))).toEqual(new Set(['DataFormatConversion.MalformedData']));
    expect(failed.some((f) => f.errorMessage.includes('id: is required (not nullable)'))).toBe(true);
    expect(failed.some((f) => f.errorMessage.includes('does not fit decimal(12,2)'))).toBe(true);
    expect(failed.every((f) => f.sequenceNumber.length > 0)).toBe(true);
    expect(await checkpoints(peers.redisClient, 'events')).toEqual(Object.fromEntries(sequences.lastByShard));

    // Each partition is its own Parquet file.
    const parts = await readObjects(peers.s3Client, BUCKET, 'split/');
    expect(new Set(parts.map((o) => o.key.split('/')[1]))).toEqual(new Set(['c=C0', 'c=C1', 'c=C2']));
    for (const o of parts) {
      const cities = await readParquet([o.body], (source) => `SELECT DISTINCT upper(city) AS c FROM ${source}`);
      expect(cities).toEqual([{ c: o.key.split('/')[1]!.slice(2) }]);
    }
  });

  it('firehose run as a process, stopped by Ctrl-C: records read from their bytes (and those that are not) land partitioned in Parquet, every value read back; refused ones in the error output; checkpoints at the last record', async () => {
    await createStream(peers.kinesisClient, 'cli', 2);
    const adminPort = await freePort();
    const configPath = join(await mkdtemp(join(tmpdir(), 'firehose-parquet-cli-')), 'streams.yaml');
    const flat = `
      dataFormatConversionConfiguration:
        enabled: true
        outputFormatConfiguration: { serializer: { parquetSerDe: { compression: SNAPPY } } }
        schema:
          - { name: id, type: bigint, nullable: false }
          - { name: customer, type: string }
          - { name: name, type: string }
          - { name: n, type: int }
          - { name: score, type: double }
          - { name: ok, type: boolean }
          - { name: ts, type: timestamp }
          - { name: http, type: "struct<status:int,path:string>" }
      dynamicPartitioningConfiguration: { enabled: true }
      processingConfiguration:
        enabled: true
        processors:
          - { type: MetadataExtraction, parameters: { metadataExtractionQuery: "{customer: .customer}" } }`;
    await writeFile(
      configPath,
      `
redis: { url: "${peers.redis.url}" }
runtime: { checkpointIntervalInMillis: 200, admin: { enabled: true, port: ${adminPort} } }
deliveryStreams:
${streamYaml(peers, { deliveryStreamName: 'cli', streamName: 'cli', bucket: BUCKET, sizeInMBs: 64, compressionFormat: 'UNCOMPRESSED', prefix: 'cli/customer=!{partitionKeyFromQuery:customer}/', errorOutputPrefix: 'cli-errors/!{firehose:error-output-type}/', s3Extra: flat })}`,
    );
    // Most are read from their bytes; escapes, mixed-case keys, numbers as text and a number for a
    // string column are read the general way; some cannot be partitioned or converted at all.
    const records = Array.from({ length: 3_000 }, (_, i) => {
      const row = {
        id: i,
        customer: `c${i % 3}`,
        name: i % 10 === 1 ? `a "quoted"\nname ${i}` : i % 10 === 2 ? null : `user-${i} é`,
        n: i % 10 === 3 ? String(i) : i,
        score: i / 4,
        ok: i % 2 === 0,
        ts: i % 10 === 4 ? new Date(1_764_612_345_000 + i).toISOString() : 1_764_612_345_000 + i,
        http: i % 10 === 5 ? null : { status: 200 + (i % 5), path: `/p/${i % 7}` },
      };
      const text = JSON.stringify(row);
      return i % 10 === 6 ? text.replace('"name"', '"NAME"') : i % 10 === 7 ? text.replace(/"name":"[^"]*"/, '"name":7') : text;
    });
    const unpartitionable = ['not json', '{"id":1,"customer":null}'];
    const unconvertible = ['{"customer":"c0","name":"no id"}', '{"customer":"c1","id":"x"}'];
    const sequences = new SequenceTracker();
    const all = [...records, ...unpartitionable, ...unconvertible];
    (await putAll(peers.kinesisClient, 'cli', all.map((r, i) => ({ data: Buffer.from(r), partitionKey: `p${i}` })))).forEach((r) => sequences.note(r.shardId, r.sequenceNumber));

    const running = firehose(['run', '--config', configPath], { FIREHOSE_LOG_LEVEL: 'warn' }, { ownProcessGroup: true });
    const read = async () => {
      try {
        const stats = (await (await fetch(`http://127.0.0.1:${adminPort}/stats`)).json()) as { cli: { recordsRead: number } };
        return stats.cli.recordsRead;
      } catch {
        return 0;
      }
    };
    await waitFor(async () => (await read()) === all.length, 60_000, 'every record read');
    // Ctrl-C in the terminal: SIGINT to the whole process group; the buffers are sealed and delivered.
    process.kill(-running.child.pid!, 'SIGINT');
    expect((await running.exited).code, running.stderr()).toBe(0);

    const objects = await readObjects(peers.s3Client, BUCKET, 'cli/');
    expect(new Set(objects.map((o) => o.key.split('/')[1]))).toEqual(new Set(['customer=c0', 'customer=c1', 'customer=c2']));
    const rows = (await readParquet(
      objects.map((o) => o.body),
      (source) => `SELECT CAST(id AS INTEGER) AS id, customer, name, n, score, ok, CAST(epoch_ms(ts) AS BIGINT) AS ts, http FROM ${source} ORDER BY id`,
    )) as Array<Record<string, unknown>>;
    expect(rows).toHaveLength(records.length);
    rows.forEach((row, i) => {
      const r = JSON.parse(records[i]!) as Record<string, unknown>;
      expect(row, records[i]).toEqual({
        id: i,
        customer: `c${i % 3}`,
        name: 'NAME' in r ? r.NAME : i % 10 === 7 ? '7' : r.name,
        n: i,
        score: i / 4,
        ok: i % 2 === 0,
        ts: String(1_764_612_345_000 + i),
        http: i % 10 === 5 ? null : { status: 200 + (i % 5), path: `/p/${i % 7}` },
      });
    });
    // Each file holds its own customer's rows only.
    for (const o of objects) {
      expect(await readParquet([o.body], (source) => `SELECT DISTINCT customer FROM ${source}`)).toEqual([{ customer: o.key.split('/')[1]!.slice('customer='.length) }]);
    }
    const errors = async (type: string) =>
      (await readObjects(peers.s3Client, BUCKET, `cli-errors/${type}/`)).flatMap((o) => o.body.toString().split('\n').slice(0, -1)).map((l) => Buffer.from((JSON.parse(l) as { rawData: string }).rawData, 'base64').toString());
    expect((await errors('partitioning-failed')).sort()).toEqual([...unpartitionable].sort());
    expect((await errors('format-conversion-failed')).sort()).toEqual([...unconvertible].sort());
    expect(await checkpoints(peers.redisClient, 'cli')).toEqual(Object.fromEntries(sequences.lastByShard));
  });
});
