import { parquetMetadata, parquetReadObjects } from 'hyparquet';
import { describe, expect, it } from 'vitest';
import { RowGroupColumns } from '../src/conversion/record-reader.js';
import { PARQUET_MAGIC, encodeRowGroup, parquetFooter, placeRowGroup } from '../src/conversion/row-group.js';
import { parseJsonExact, parseType, rowOf, type SessionSpec } from '../src/conversion/types.js';

const columns = (list: Array<[string, string, boolean?]>) => list.map(([name, type, nullable]) => ({ name, type: parseType(type), nullable: nullable ?? true }));
const spec = (overrides: Partial<SessionSpec> = {}): SessionSpec => ({
  columns: columns([
    ['id', 'bigint', false],
    ['name', 'string'],
    ['small', 'int'],
    ['score', 'double'],
    ['ratio', 'float'],
    ['active', 'boolean'],
    ['ts', 'timestamp'],
    ['day', 'date'],
    ['blob', 'binary'],
    ['http', 'struct<method:string,status:int,inner:struct<deep:bigint,label:string>>'],
    ['tags', 'array<string>'],
    ['amount', 'decimal(10,2)'],
  ]),
  deserializer: { caseInsensitive: true, columnToJsonKeyMappings: {}, convertDotsInJsonKeysToUnderscores: false },
  compression: 'SNAPPY',
  pageSizeBytes: 512,
  rowGroupBytes: 1 << 20,
  enableDictionaryCompression: true,
  ...overrides,
});

/** Records the reader must read as the general path does, or leave to it: every one is compared. */
const TRICKY = [
  '{"id":1,"name":"plain","small":7,"score":1.5,"ratio":0.1,"active":true,"ts":1764612345678,"day":"2026-02-03","blob":"b","http":{"method":"GET","status":200,"inner":{"deep":5,"label":"x"}},"tags":["a"],"amount":1.25}',
  '  {"id" : 2 , "name" : "spaces\\tand escapes \\" \\u00e9" }\n',
  '{"id":3,"name":"caf\u00e9 \u{1F600}","NAME":"ignored? no: a second match","small":"42"}',
  '{"ID":4,"Name":"case-insensitive","HTTP":{"METHOD":"post"}}',
  '{"id":5,"id":6}',
  '{"id":"7","small":"8","score":"9.5","active":"true","ts":"2026-01-01T00:00:00.123Z","day":"2026-12-31"}',
  '{"id":9007199254740993,"score":12345678901234567890,"small":-0}',
  '{"id":1e3,"score":-0,"ratio":3.4028235677973366e38,"small":2147483647}',
  '{"id":11,"small":2147483648}',
  '{"id":12,"small":1.5}',
  '{"id":13,"score":1.7976931348623157e308,"ts":-1.9}',
  '{"id":14,"http":null,"tags":null}',
  '{"id":15,"http":{},"unknown":{"a":[1,2,{"b":null}],"c":"\\ud83d\\ude00"}}',
  '{"id":16,"http":{"inner":null,"status":null}}',
  '{"id":17,"http":[1]}',
  '{"id":18,"name":5}',
  '{"id":19,"name":true}',
  '{"id":20,"name":{"x":1}}',
  '{"id":21,"active":1}',
  '{"name":"no id"}',
  '{"id":null}',
  '[1,2,3]',
  '"just a string"',
  'not json',
  '{"id":22,}',
  '{"id":23',
  '{"id":24}}',
  '{"id":25,"name":"x"} trailing',
  '{"id":01}',
  '{"id":26,"score":1.}',
  '{"id":27,"score":.5}',
  '{"id":28,"score":NaN}',
  '{"id":29,"name":"tab\tinside"}',
  '\ufeff{"id":30}',
  '{"id":31,"\u212Aey":"kelvin"}',
  '{"id":32,"day":"2026-02-30","ts":"yesterday"}',
  '{"id":33,"ts":8640000000000001}',
  '{"id":34,"amount":"123.456","tags":["x","y"]}',
  '{"id":35,"amount":"too big 99999999999.99"}',
  '{"id":36,"tags":"not an array"}',
  '{"id":37,"blob":"\\u0000"}',
  '{"id":38,"score":123456789012345678e-30,"ratio":1e-50}',
  '{"id":-9223372036854775808,"small":-2147483648}',
  '{"id":9223372036854775808}',
  '{"id":39,"http":{"inner":{"deep":"12","label":null,"Deep":3}}}',
  '{"id":40,"hTtP":{"Inner":{"LABEL":"mixed"}}}',
  '{}',
  '{"id":41,"score":0.1e1,"ratio":-1.5E+2}',
  '{"id":42, "name": "", "blob": ""}',
  '{"id":43,"ts":"1764612345678","day":20260101}',
  '{"id":44,"active":false,"small":0}',
  '{"id":45,"name":"x","name2":"\\/"}',
];

function payloadOf(records: Array<string | Buffer>): { payload: Buffer; ends: Uint32Array } {
  const buffers = records.map((r) => (typeof r === 'string' ? Buffer.from(r) : r));
  const ends = new Uint32Array(buffers.length);
  let at = 0;
  buffers.forEach((b, i) => (ends[i] = at += b.length));
  return { payload: Buffer.concat(buffers), ends };
}

async function readBack(s: SessionSpec, payload: Buffer, ends: Uint32Array) {
  const group = encodeRowGroup(s, payload, ends);
  placeRowGroup(group, PARQUET_MAGIC.length);
  const footer = parquetFooter(s, [group], PARQUET_MAGIC.length + group.bytes.length);
  const file = Buffer.concat([PARQUET_MAGIC, group.bytes, footer]);
  const buffer = file.buffer.slice(file.byteOffset, file.byteOffset + file.length) as ArrayBuffer;
  const rows = group.rowGroup ? await parquetReadObjects({ file: buffer }) : [];
  return { rows, failures: group.failures, metadata: group.rowGroup ? parquetMetadata(buffer) : undefined };
}

/** Both sides as comparable values: times as milliseconds, bytes as hex, floats as float32 holds them. */
function normal(value: unknown, type: string): unknown {
  if (value === null || value === undefined) return null;
  // decimal(10,2): the general path's unscaled bigint, a reader's number.
  if (type === 'decimal') return typeof value === 'bigint' ? Number(value) : Math.round((value as number) * 100);
  // A reader may give a BYTE_ARRAY without the UTF8 annotation as text.
  if (type === 'binary' && typeof value === 'string') return Buffer.from(value).toString('hex');
  // An int column holds no -0.
  if (type === 'int' && value === 0) return 0;
  if (value instanceof Date) return type === 'date' ? Math.floor(value.getTime() / 86_400_000) : value.getTime();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('hex');
  if (typeof value === 'bigint') return value.toString();
  if (type === 'float') return Math.fround(value as number);
  if (type === 'date' && typeof value === 'number') return value;
  if (Array.isArray(value)) return value.map((v) => normal(v, ''));
  if (typeof value === 'object') return Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, normal(v, '')]));
  return value;
}

/** What the general path makes of each record: its row, or the message naming why it fails. */
function generalPath(s: SessionSpec, records: Array<string | Buffer>) {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const rows: unknown[] = [];
  const failures: number[] = [];
  records.forEach((r, i) => {
    try {
      const row = rowOf(parseJsonExact(decoder.decode(typeof r === 'string' ? Buffer.from(r) : r)), s.columns, s.deserializer);
      rows.push(Object.fromEntries(s.columns.map((c, k) => [c.name, normal(row[k], c.type.kind)])));
    } catch {
      failures.push(i);
    }
  });
  return { rows, failures };
}

async function expectSameAsGeneralPath(s: SessionSpec, records: Array<string | Buffer>) {
  const { payload, ends } = payloadOf(records);
  const { rows, failures, metadata } = await readBack(s, payload, ends);
  const expected = generalPath(s, records);
  expect(failures.map((f) => f.index)).toEqual(expected.failures);
  expect(rows.map((row) => Object.fromEntries(s.columns.map((c) => [c.name, normal(row[c.name], c.type.kind)])))).toEqual(expected.rows);
  // A reader skips row groups by their statistics: each bound is a value the column holds, none past it.
  for (const chunk of metadata?.row_groups[0]!.columns ?? []) {
    const path = chunk.meta_data!.path_in_schema;
    if (!['name', 'small', 'score', 'ts'].includes(path.join('.'))) continue;
    const held = rows.map((row) => row[path[0]!] as unknown).filter((v) => v !== null && v !== undefined).map((v) => (v instanceof Date ? v.getTime() : v));
    if (held.length === 0) continue;
    const order = (a: unknown, b: unknown) => (typeof a === 'string' ? Buffer.compare(Buffer.from(a), Buffer.from(b as string)) : (a as number) - (b as number));
    held.sort(order);
    const { min_value, max_value, null_count } = chunk.meta_data!.statistics!;
    // Strings' bounds are cut to a prefix (the maximum's last byte raised): bounds, not values.
    const bound = (v: unknown) => (v instanceof Date ? v.getTime() : v === 0 ? 0 : v);
    const [min, max] = [bound(min_value), bound(max_value)];
    expect(order(min, held[0]), `${path.join('.')} minimum ${String(min)}`).toBeLessThanOrEqual(0);
    expect(order(max, held.at(-1)), `${path.join('.')} maximum ${String(max)}`).toBeGreaterThanOrEqual(0);
    if (typeof min === 'number') expect([min, max]).toEqual([bound(held[0]), bound(held.at(-1))]);
    expect(null_count).toBe(BigInt(rows.length - held.length));
  }
}

/** Which records the reader takes from their bytes (the rest go the general way). */
function readDirectly(s: SessionSpec, records: string[]): boolean[] {
  const { payload, ends } = payloadOf(records);
  const columns = new RowGroupColumns(s);
  let start = 0;
  return Array.from(ends, (end) => {
    const read = columns.read(payload, start, end);
    start = end;
    return read;
  });
}

function random(seed: number) {
  let x = seed;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('the record reader: JSON bytes straight into the columns, the same rows as the general path', () => {
  it('tricky records — escapes, case, duplicate keys, numbers as text, exactness, nulls, malformed JSON — give the rows (and the failures) the general path gives', async () => {
    await expectSameAsGeneralPath(spec(), TRICKY);
    // Every record on its own too: a row group of one, and one that fails.
    for (const record of TRICKY.slice(0, 12)) await expectSameAsGeneralPath(spec(), [record]);
  });

  it('reads plain records from their bytes and leaves to the general path only what it does not read the same way', () => {
    const read = readDirectly(spec(), TRICKY);
    const directly = (record: string) => read[TRICKY.indexOf(record)];
    for (const record of [
      '{"id":1,"name":"plain","small":7,"score":1.5,"ratio":0.1,"active":true,"ts":1764612345678,"day":"2026-02-03","blob":"b","http":{"method":"GET","status":200,"inner":{"deep":5,"label":"x"}},"tags":["a"],"amount":1.25}',
      '{"ID":4,"Name":"case-insensitive","HTTP":{"METHOD":"post"}}',
      '{"id":"7","small":"8","score":"9.5","active":"true","ts":"2026-01-01T00:00:00.123Z","day":"2026-12-31"}',
      '{"id":9007199254740993,"score":12345678901234567890,"small":-0}',
      '{"id":15,"http":{},"unknown":{"a":[1,2,{"b":null}],"c":"\\ud83d\\ude00"}}',
      '{"id":16,"http":{"inner":null,"status":null}}',
    ]) expect(directly(record), record).toBe(true);
    // An escape in a kept string, a second match for a column, a number as a string column's value.
    for (const record of ['  {"id" : 2 , "name" : "spaces\\tand escapes \\" \\u00e9" }\n', '{"id":5,"id":6}', '{"id":18,"name":5}', '{"id":39,"http":{"inner":{"deep":"12","label":null,"Deep":3}}}']) {
      expect(directly(record), record).toBe(false);
    }
    // Nothing malformed or refused is read: each fails on the general path, with its reason.
    const refused = new Set(generalPath(spec(), TRICKY).failures);
    expect(refused.size).toBeGreaterThan(20);
    for (const i of refused) expect(read[i], TRICKY[i]).toBe(false);
  });

  it('bytes that are not UTF-8 are left to the general path, which names them', async () => {
    const bad = Buffer.concat([Buffer.from('{"id":1,"name":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    const { payload, ends } = payloadOf(['{"id":0}', bad]);
    const { failures } = await readBack(spec(), payload, ends);
    expect(failures).toEqual([{ index: 1, message: expect.stringMatching(/not UTF-8/) as unknown as string }]);
  });

  it('columnToJsonKeyMappings and case-sensitive matching read the same rows', async () => {
    const mapped = spec({
      columns: columns([['id', 'bigint', false], ['city', 'string'], ['zip', 'int'], ['Name', 'string']]),
      deserializer: { caseInsensitive: false, columnToJsonKeyMappings: { city: 'address.city', zip: 'address.code.zip' }, convertDotsInJsonKeysToUnderscores: false },
    });
    const records = [
      '{"id":1,"address":{"city":"Oslo","code":{"zip":150}},"Name":"a","city":"not this one"}',
      '{"id":2,"address":{"City":"case matters"},"name":"lower is not Name"}',
      '{"id":3,"address":"not an object","Name":null}',
      '{"id":4,"address":{"city":"first"},"address":{"code":{"zip":2}}}',
      '{"id":5,"address":{"code":[1]}}',
    ];
    await expectSameAsGeneralPath(mapped, records);
    expect(readDirectly(mapped, records)).toEqual([true, true, true, false, true]);
  });

  it('ten thousand random records, dictionary on and off, row groups of many pages: the same rows', async () => {
    const next = random(42);
    const pick = <T,>(xs: T[]) => xs[Math.floor(next() * xs.length)]!;
    const values = {
      id: () => pick([Math.floor(next() * 1e6), `${Math.floor(next() * 1e6)}`, 2 ** 53 + 2, -5]),
      name: () => pick([`user-${Math.floor(next() * 20)}`, null, 'é', 'a "quoted" name', '', 'x'.repeat(Math.floor(next() * 700))]),
      small: () => pick([Math.floor(next() * 100) - 50, '12', null, 2147483647]),
      score: () => pick([next() * 1000, -0, 1e21, 5, '3.25', null, 0.1 + 0.2]),
      ratio: () => pick([next(), 0.1, null, 16777217]),
      active: () => pick([true, false, null, 'false']),
      ts: () => pick([1_700_000_000_000 + Math.floor(next() * 1e9), new Date(1_700_000_000_000 + Math.floor(next() * 1e9)).toISOString(), null, 1.7e12 + 0.5]),
      day: () => pick(['2026-01-02', '1999-12-31', null]),
      blob: () => pick(['b', null, 'bytes \u00ff']),
      http: () => pick([null, { method: pick(['GET', 'PUT']), status: pick([200, 404, '500', null]), inner: pick([null, { deep: 7, label: pick(['l', null]) }]) }, {}]),
      tags: () => pick([null, ['a', 'b'], []]),
      amount: () => pick([null, 1.5, '2.25']),
    };
    const records = Array.from({ length: 10_000 }, () => {
      const record: Record<string, unknown> = {};
      for (const [key, make] of Object.entries(values)) if (next() < 0.9) record[next() < 0.05 ? key.toUpperCase() : key] = make();
      if (next() < 0.1) record.extra = { nested: [1, 'two', { three: null }] };
      const text = JSON.stringify(record);
      return next() < 0.02 ? text.slice(0, -1) : text;
    });
    await expectSameAsGeneralPath(spec(), records);
    await expectSameAsGeneralPath(spec({ enableDictionaryCompression: false, compression: 'UNCOMPRESSED' }), records);
    // Most are read from their bytes: the ones with a quote in a name, an upper-case duplicate, or cut short are not.
    const read = readDirectly(spec(), records);
    expect(read.filter(Boolean).length).toBeGreaterThan(records.length / 2);
  });
});
