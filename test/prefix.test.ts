import { describe, expect, it } from 'vitest';
import { compileDateFormat, compilePrefix, renderPrefix, withDefaultTime } from '../destinations/s3/prefix.js';

const at = Date.UTC(2018, 7, 27, 10, 30, 5, 42); // 2018-08-27T10:30:05.042Z, a Monday

describe('S3 prefix expressions', () => {
  it.each([
    ['yyyy/MM/dd/HH/', '2018/08/27/10/'],
    ["'year='yyyy'/month='MM'/day='dd'/hour='HH", 'year=2018/month=08/day=27/hour=10'],
    ['yyyy-MM-dd', '2018-08-27'],
    ['yy M d H m s SSS', '18 8 27 10 30 5 042'],
    ['MMM MMMM EEE EEEE a hh', 'Aug August Mon Monday AM 10'],
    ["DDD 'o''clock'", "239 o'clock"],
  ])('timestamp %s → %s', (pattern, expected) => {
    expect(compileDateFormat(pattern)(new Date(at))).toBe(expected);
  });

  it('renders Firehose examples', () => {
    const prefix = compilePrefix('myPrefix/year=!{timestamp:yyyy}/month=!{timestamp:MM}/day=!{timestamp:dd}/hour=!{timestamp:HH}/');
    expect(renderPrefix(prefix, { time: at })).toBe('myPrefix/year=2018/month=08/day=27/hour=10/');
    const errors = compilePrefix("myErrorPrefix/!{timestamp:'year='yyyy'/month='MM'/day='dd'/hour='HH}/!{firehose:error-output-type}");
    expect(renderPrefix(errors, { time: at, errorOutputType: 'processing-failed' })).toBe(
      'myErrorPrefix/year=2018/month=08/day=27/hour=10/processing-failed',
    );
  });

  it('random-string is 11 characters and new each time', () => {
    const prefix = compilePrefix('p/!{firehose:random-string}/!{firehose:random-string}/');
    const [, a, b] = renderPrefix(prefix, { time: at }).split('/');
    expect(a).toMatch(/^[a-z0-9_-]{11}$/);
    expect(b).toMatch(/^[a-z0-9_-]{11}$/);
    expect(a).not.toBe(b);
  });

  it('partition keys from the query and from the handler', () => {
    const prefix = compilePrefix('customer=!{partitionKeyFromQuery:customer}/region=!{partitionKeyFromLambda:region}/');
    expect(prefix.queryKeys).toEqual(['customer']);
    expect(prefix.lambdaKeys).toEqual(['region']);
    const keys = { 'partitionKeyFromQuery:customer': 'c7', 'partitionKeyFromLambda:region': 'eu' };
    expect(renderPrefix(prefix, { time: at, partitionKeys: keys })).toBe('customer=c7/region=eu/');
    // The namespaces are separate: a query key does not stand in for a Lambda key of the same name.
    expect(() => renderPrefix(prefix, { time: at, partitionKeys: { 'partitionKeyFromQuery:customer': 'c7', 'partitionKeyFromQuery:region': 'x' } })).toThrow(
      'no partition key partitionKeyFromLambda:region',
    );
  });

  it('appends yyyy/MM/dd/HH/ only to a prefix without a timestamp', () => {
    expect(renderPrefix(withDefaultTime(compilePrefix('clicks/')), { time: at })).toBe('clicks/2018/08/27/10/');
    expect(renderPrefix(withDefaultTime(compilePrefix('d=!{timestamp:yyyy-MM-dd}/')), { time: at })).toBe('d=2018-08-27/');
  });

  it.each([
    ['x/!{timestamp:yyyy', '"!{" must start a !{namespace:value} expression'],
    ['x/!{nope:thing}/', 'unknown namespace "nope"'],
    ['x/!{firehose:uuid}/', 'the firehose namespace has random-string and error-output-type'],
    ['x/!{timestamp:yyyy-QQ}/', 'pattern letter "Q" is not supported'],
    ['x/!{partitionKeyFromQuery:a b}/', 'a partition key name is letters, digits, _ and -'],
  ])('rejects %s', (template, message) => {
    expect(() => compilePrefix(template)).toThrow(message);
  });
});
