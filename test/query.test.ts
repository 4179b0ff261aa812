import { describe, expect, it } from 'vitest';
import { compileQuery } from '../src/partitioning/query.js';

const record = { customer_id: 'c-17', geo: { region: 'eu-west', 'city name': 'Lyon' }, tags: ['a', 'b'], n: 42, ok: true, ts: 1535365805, nothing: null };

describe('MetadataExtraction queries (jq subset)', () => {
  it('evaluates paths, shorthand keys and filters', () => {
    const q = compileQuery('{customer: .customer_id, region: .geo.region, city: .geo["city name"] | ascii_upcase, first: .tags[0], last: .tags[-1], n: .n | tostring, ok: .ok, day: .ts | strftime("%Y-%m-%d"), customer_id}');
    expect(q.keys).toEqual(['customer', 'region', 'city', 'first', 'last', 'n', 'ok', 'day', 'customer_id']);
    expect(q.evaluate(record)).toEqual({
      customer: 'c-17', region: 'eu-west', city: 'LYON', first: 'a', last: 'b', n: '42', ok: 'true', day: '2018-08-27', customer_id: 'c-17',
    });
  });

  it('names the key that has no value', () => {
    expect(() => compileQuery('{c: .customer_id, z: .missing.deep}').evaluate(record)).toThrow('partition key "z" is null or missing');
    expect(() => compileQuery('{x: .nothing}').evaluate(record)).toThrow('partition key "x" is null or missing');
    expect(() => compileQuery('{g: .geo}').evaluate(record)).toThrow('partition key "g" is an object');
    expect(() => compileQuery('{c: .customer_id}').evaluate('a string')).toThrow('null or missing');
  });

  it.each([
    ['.customer_id', 'expected "{"'],
    ['{c: .a | length}', 'filter "length" is not supported'],
    ['{c: .a, c: .b}', 'a key appears twice'],
    ['{c: .a} extra', 'unexpected text'],
    ['{c: customer_id}', 'expected "."'],
  ])('rejects %s', (source, message) => {
    expect(() => compileQuery(source)).toThrow(message);
  });
});

describe('field-path queries read from the record bytes', () => {
  const queries = [
    '{customer: .customer_id, region: .geo.region}',
    '{city: .geo["city name"] | ascii_upcase, customer_id}',
    '{day: .ts | strftime("%Y-%m-%d")}',
    '{n: .n}',
  ];
  const records = [
    JSON.stringify(record),
    '{"customer_id":"c-1","geo":{"region":"us","city name":"Oslo"},"ts":"1535365805","n":"7"}',
    '{"customer_id":"c-\\u0031","geo":{"region":"esc\\"aped"}}',
    '{"customer_id":"c-2","customer_id":"c-3","geo":{"region":"dup"}}',
    '{"customer_id":"c-4","geo":"not an object"}',
    '{"customer_id":"c-5","geo":{"region":null}}',
    '{"customer_id":"c-6","geo":{"region":"x"},"extra":[1,{"a":"\\n"},true,null,-1.5e3]}',
    '{"Customer_id":"case","geo":{"region":"y"}}',
    '{"customer_id":"caf\u00e9 \u{1F600}","geo":{"region":"z"}}',
    '{"customer_id":"c-7","geo":{"region":"w"}',
    '{"customer_id":"c-8","geo":{"region":"w"}} trailing',
    '[{"customer_id":"c-9"}]',
    '  {"customer_id" : "c-10" , "geo" : { "region" : "spaced" } }\n',
  ];
  const outcome = (f: () => unknown) => {
    try {
      return f();
    } catch (err) {
      return `${(err as Error).constructor.name}: ${(err as Error).message}`;
    }
  };

  it.each(queries)('%s: the keys read from the bytes are those of the parsed record, or the record is left to be parsed', (source) => {
    const q = compileQuery(source);
    let read = 0;
    for (const text of records) {
      const data = Buffer.from(text);
      const parsed = outcome(() => q.evaluate(JSON.parse(data.toString('utf8'))));
      const fromBytes = q.fromBytes(data);
      if (fromBytes) read++;
      // Read from the bytes only where the parse would give the same keys.
      expect(fromBytes ?? parsed, text).toEqual(parsed);
    }
    expect(read).toBeGreaterThan(0);
  });

  it('reads plain records without parsing them, and leaves escapes, duplicates and malformed JSON to the parse', () => {
    const q = compileQuery(queries[0]!);
    const fromBytes = records.map((text) => q.fromBytes(Buffer.from(text)) !== undefined);
    expect(fromBytes).toEqual([true, true, false, false, false, false, true, false, true, false, false, false, true]);
    expect(compileQuery('{first: .tags[0]}').fromBytes(Buffer.from(JSON.stringify(record)))).toBeUndefined();
  });
});
