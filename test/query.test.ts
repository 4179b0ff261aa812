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
