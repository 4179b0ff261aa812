// Compares Parquet writers for Node on the same rows, in one run: encode speed, file size, heap
// growth, and whether DuckDB (an independent reader) reads the values back. Not part of npm test;
// the candidates are not project dependencies:
//   npm install --no-save parquet-wasm apache-arrow @dsnp/parquetjs@1.8.8 parquetjs-lite
//   node bench/parquet-writers.mjs [rows]
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
const ROWS = Number(process.argv[2] ?? 200_000);
const dir = mkdtempSync(join(tmpdir(), 'pq-writers-'));
const LEVELS = ['DEBUG', 'INFO', 'WARN', 'ERROR'];
const rows = Array.from({ length: ROWS }, (_, i) => ({
  ts: new Date(Date.UTC(2026, 0, 1) + i * 137),
  level: LEVELS[i % 4],
  pid: 1000 + (i % 30000),
  latency: (i % 9973) / 7,
  bytes: BigInt(i) * 7919n,
  msg: `request ${i} from ${(i * 2654435761) % 4294967296} took ${(i % 997) / 3} ms`,
}));

const writers = {
  async 'hyparquet-writer'(path) {
    const { parquetWriteBuffer } = await import('hyparquet-writer');
    const buffer = parquetWriteBuffer({
      columnData: [
        { name: 'ts', data: rows.map((r) => r.ts), type: 'TIMESTAMP' },
        { name: 'level', data: rows.map((r) => r.level), type: 'STRING' },
        { name: 'pid', data: rows.map((r) => r.pid), type: 'INT32' },
        { name: 'latency', data: rows.map((r) => r.latency), type: 'DOUBLE' },
        { name: 'bytes', data: rows.map((r) => r.bytes), type: 'INT64' },
        { name: 'msg', data: rows.map((r) => r.msg), type: 'STRING' },
      ],
      codec: 'SNAPPY',
    });
    writeFileSync(path, new Uint8Array(buffer));
  },
  async 'parquet-wasm + apache-arrow'(path) {
    const arrow = await import('apache-arrow');
    const wasm = await import('parquet-wasm');
    const table = new arrow.Table({
      ts: arrow.vectorFromArray(rows.map((r) => r.ts.getTime()), new arrow.TimestampMillisecond()),
      level: arrow.vectorFromArray(rows.map((r) => r.level), new arrow.Utf8()),
      pid: arrow.vectorFromArray(rows.map((r) => r.pid), new arrow.Int32()),
      latency: arrow.vectorFromArray(rows.map((r) => r.latency), new arrow.Float64()),
      bytes: arrow.vectorFromArray(rows.map((r) => r.bytes), new arrow.Int64()),
      msg: arrow.vectorFromArray(rows.map((r) => r.msg), new arrow.Utf8()),
    });
    const props = new wasm.WriterPropertiesBuilder().setCompression(wasm.Compression.SNAPPY).build();
    writeFileSync(path, wasm.writeParquet(wasm.Table.fromIPCStream(arrow.tableToIPC(table, 'stream')), props));
  },
  async '@dsnp/parquetjs 1.8.8'(path) {
    const { ParquetSchema, ParquetWriter } = require('@dsnp/parquetjs');
    const schema = new ParquetSchema({
      ts: { type: 'TIMESTAMP_MILLIS', compression: 'SNAPPY' }, level: { type: 'UTF8', compression: 'SNAPPY' }, pid: { type: 'INT32', compression: 'SNAPPY' },
      latency: { type: 'DOUBLE', compression: 'SNAPPY' }, bytes: { type: 'INT64', compression: 'SNAPPY' }, msg: { type: 'UTF8', compression: 'SNAPPY' },
    });
    const writer = await ParquetWriter.openFile(schema, path);
    for (const r of rows) await writer.appendRow(r);
    await writer.close();
  },
  async 'parquetjs-lite 0.8.7'(path) {
    const { ParquetSchema, ParquetWriter } = require('parquetjs-lite');
    const schema = new ParquetSchema({
      ts: { type: 'TIMESTAMP_MILLIS', compression: 'SNAPPY' }, level: { type: 'UTF8', compression: 'SNAPPY' }, pid: { type: 'INT32', compression: 'SNAPPY' },
      latency: { type: 'DOUBLE', compression: 'SNAPPY' }, bytes: { type: 'INT64', compression: 'SNAPPY' }, msg: { type: 'UTF8', compression: 'SNAPPY' },
    });
    const writer = await ParquetWriter.openFile(schema, path);
    for (const r of rows) await writer.appendRow({ ...r, bytes: Number(r.bytes) });
    await writer.close();
  },
};

const { DuckDBInstance } = await import('@duckdb/node-api');
const db = await DuckDBInstance.create(':memory:');
const duck = await db.connect();

console.log(`${ROWS} rows × 6 columns (timestamp, string, int32, double, int64, string), SNAPPY`);
for (const [name, write] of Object.entries(writers)) {
  const path = join(dir, `${name.replace(/\W+/g, '_')}.parquet`);
  try {
    const t = performance.now();
    await write(path);
    const seconds = (performance.now() - t) / 1000;
    const check = await duck.runAndReadAll(
      `SELECT count(*) AS n, min(epoch_ms(ts)) AS t0, max(bytes) AS b, sum(pid) AS p FROM read_parquet('${path}')`,
    );
    const [row] = check.getRowObjectsJson();
    const expected = { n: String(ROWS), t0: String(rows[0].ts.getTime()), b: String(rows.at(-1).bytes), p: String(rows.reduce((s, r) => s + r.pid, 0)) };
    const ok = JSON.stringify(row) === JSON.stringify(expected);
    console.log(
      `${name.padEnd(28)} ${Math.round(ROWS / seconds).toLocaleString('en').padStart(9)} rows/s  ${(statSync(path).size / 1024 / 1024).toFixed(1).padStart(5)} MiB  DuckDB reads it: ${ok ? 'yes, values match' : `MISMATCH ${JSON.stringify(row)}`}`,
    );
  } catch (err) {
    console.log(`${name.padEnd(28)} failed: ${err.message}`);
  }
}
