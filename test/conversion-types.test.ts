import { describe, expect, it } from 'vitest';
import { coerce, hasSixteenDigits, parseJsonExact, parseType, rowOf } from '../src/conversion/types.js';

describe('column types and OpenX coercions', () => {
  it('parses Hive types as Glue writes them', () => {
    expect(parseType('array<struct<a:int,b:map<string,decimal(10,2)>>>')).toEqual({
      kind: 'array',
      element: { kind: 'struct', fields: [{ name: 'a', type: { kind: 'int' } }, { name: 'b', type: { kind: 'map', key: { kind: 'string' }, value: { kind: 'decimal', precision: 10, scale: 2 } } }] },
    });
    expect(parseType('varchar(20)')).toEqual({ kind: 'string' });
    expect(parseType('BIGINT')).toEqual({ kind: 'bigint' });
  });

  it.each([
    ['int', '42', 42],
    ['int', 42, 42],
    ['bigint', '9007199254740993', 9007199254740993n], // exact beyond 2^53
    ['double', '2.5', 2.5],
    ['boolean', 'true', true],
    ['string', 17, '17'],
    ['string', { a: 1 }, '{"a":1}'],
    ['decimal(12,2)', '123.455', 12346n], // exact, rounded half up
    ['decimal(12,2)', 0.1, 10n],
    ['decimal(5,0)', '-1e3', -1000n],
    ['timestamp', '2026-01-02T03:04:05.678Z', new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))],
    ['timestamp', 1767323045678, new Date(1767323045678)],
    ['timestamp', '1767323045678', new Date(1767323045678)],
    ['date', '2024-02-29', new Date(Date.UTC(2024, 1, 29))],
  ])('%s from %j', (type, value, expected) => {
    expect(coerce(value, parseType(type), 'c')).toEqual(expected);
  });

  it.each([
    ['int', 'twelve', 'c: "twelve" cannot be read as int'],
    ['int', 2 ** 31, 'is out of range for int'],
    ['decimal(4,2)', '123.45', 'does not fit decimal(4,2)'],
    ['date', '02/29/2024', 'is not a yyyy-MM-dd date'],
    ['array<int>', [1, 'x'], 'c[1]: "x" cannot be read as int'],
    ['struct<a:int>', { a: 'no' }, 'c.a: "no" cannot be read as int'],
  ])('%s rejects %j, naming the path', (type, value, message) => {
    expect(() => coerce(value, parseType(type), 'c')).toThrow(message);
  });

  it('reads rows with case-insensitive keys, key mappings and dotted keys', () => {
    const columns = [
      { name: 'userid', type: parseType('string'), nullable: false },
      { name: 'city', type: parseType('string'), nullable: true },
      { name: 'geo_lat', type: parseType('double'), nullable: true },
    ];
    const options = { caseInsensitive: true, columnToJsonKeyMappings: { city: 'address.city' }, convertDotsInJsonKeysToUnderscores: true };
    expect(rowOf({ UserId: 'u1', address: { city: 'Lyon' }, 'geo.lat': '45.7' }, columns, options)).toEqual(['u1', 'Lyon', 45.7]);
    expect(() => rowOf({ city: 'x' }, columns, options)).toThrow('userid: is required (not nullable)');
    expect(() => rowOf({ UserId: 'u1' }, columns, { ...options, caseInsensitive: false })).toThrow('userid: is required');
  });
});

describe('numbers past what a float64 keeps', () => {
  it('bigint and decimal columns take the digits as written; other columns read them as before', () => {
    const columns = [
      { name: 'id', type: parseType('bigint'), nullable: false },
      { name: 'amount', type: parseType('decimal(20,2)'), nullable: true },
      { name: 'ratio', type: parseType('double'), nullable: true },
      { name: 'note', type: parseType('string'), nullable: true },
      { name: 'small', type: parseType('int'), nullable: true },
    ];
    const text = '{"id":9007199254740993,"amount":123456789012345678.91,"ratio":1.2345678901234567e3,"note":"9007199254740993 and \\"12345678901234567\\"","small":-42}';
    const options = { caseInsensitive: true, columnToJsonKeyMappings: {}, convertDotsInJsonKeysToUnderscores: false };
    expect(rowOf(parseJsonExact(text), columns, options)).toEqual([9007199254740993n, 12345678901234567891n, 1234.5678901234567, '9007199254740993 and "12345678901234567"', -42]);
    // Without the exact parse, the id would be …992.
    expect(rowOf(JSON.parse(text), columns, options)[0]).toBe(9007199254740992n);
    expect(parseJsonExact('[1,-0.5,"x",12345678901234567890,{"a":[-12345678901234567]}]')).toEqual([1, -0.5, 'x', '12345678901234567890', { a: ['-12345678901234567'] }]);
  });

  it('finds a run of 16 digits wherever it starts, as /\\d{16}/ does (runs of 15 are not one)', () => {
    for (let length = 14; length <= 18; length++)
      for (let at = 0; at <= 40; at++)
        for (const pad of ['', 'x', '{"a":', '1 2 3 ']) {
          const text = `${pad}${'a'.repeat(at)}${'7'.repeat(length)}${'b'.repeat(40 - at)}`;
          expect(hasSixteenDigits(text), text).toBe(/\d{16}/.test(text));
        }
    // Many short runs side by side, and random text of digits and not.
    const random = (n: number) => Array.from({ length: n }, () => (Math.random() < 0.8 ? String(Math.floor(Math.random() * 10)) : ',')).join('');
    for (let i = 0; i < 2_000; i++) {
      const text = random(1 + Math.floor(Math.random() * 200));
      expect(hasSixteenDigits(text), text).toBe(/\d{16}/.test(text));
    }
    expect(hasSixteenDigits('')).toBe(false);
    expect(hasSixteenDigits('٠١٢٣٤٥٦٧٨٩٠١٢٣٤٥')).toBe(false); // Arabic-Indic digits are not JSON digits
  });
});
