import { describe, expect, it } from 'vitest';
import { ShardProgress } from '../src/ack.js';
import type { BufferSet, BufferTags } from '../src/buffer.js';
import { ManualClock } from '../src/clock.js';
import type { Destination } from '../src/destination.js';
import type { Failure } from '../src/failure.js';
import { compileQuery } from '../src/partitioning/query.js';
import type { PipelineSettings } from '../src/pipeline-settings.js';
import type { RecordEnds } from '../src/pipeline/record-ends.js';
import { Router } from '../src/pipeline/router.js';
import type { SourceRecord } from '../src/records.js';

/** The router between the transform and the buffers, with the buffers and record ends recording what they are given. */
function routerFor(query: string, lambdaKeys: string[] = []) {
  const compiled = compileQuery(query);
  const settings = {
    buffer: { sizeBytes: 1 << 20, intervalMs: 60_000, encoding: 'GZIP', appendNewlineDelimiter: true },
    errorOutputEncoding: 'UNCOMPRESSED',
    processing: { metadataExtraction: compiled },
    partitioning: { queryKeys: compiled.keys, lambdaKeys },
  } as PipelineSettings;
  const appended: Array<{ key: string; tags: BufferTags; data: string }> = [];
  const failed: Array<{ data: string; failure: Failure }> = [];
  const objects = { append: (key: string, tags: BufferTags, record: SourceRecord) => appended.push({ key, tags, data: record.data.toString() }) } as unknown as BufferSet;
  const ends = { failed: (record: SourceRecord, failure: Failure) => failed.push({ data: record.data.toString(), failure }) } as unknown as RecordEnds;
  const router = new Router(settings, objects, ends, {} as Destination, new ManualClock());
  const shard = new ShardProgress('s', undefined, { segmentReleased() {}, progressed() {} });
  const segment = shard.open('1000', 1000, 0);
  const route = (json: string, keys?: Record<string, string>) =>
    router.route({ data: Buffer.from(json), partitionKey: 'k', shardId: 's', sequenceNumber: '1', subSequenceNumber: 0, approximateArrivalTimestamp: 0, segment }, keys);
  return { route, appended, failed };
}

describe('routing records to their partitions', () => {
  it('records of one partition go to one buffer key with the same tags; another partition to another', () => {
    const { route, appended, failed } = routerFor('{customer: .customer}');
    for (const c of ['c1', 'c2', 'c1', 'c1']) route(JSON.stringify({ customer: c, n: 1 }));
    expect(failed).toEqual([]);
    expect(appended.map((a) => a.key)).toEqual(['{"partitionKeyFromQuery:customer":"c1"}', '{"partitionKeyFromQuery:customer":"c2"}', '{"partitionKeyFromQuery:customer":"c1"}', '{"partitionKeyFromQuery:customer":"c1"}']);
    expect(appended[0]!.tags).toEqual({ partitionKeys: { 'partitionKeyFromQuery:customer': 'c1' } });
    expect(appended[2]!.tags).toBe(appended[0]!.tags);
  });

  it('a value that cannot name a place fails every record that has it, seen before or not; a record that is not JSON fails as such', () => {
    const { route, appended, failed } = routerFor('{customer: .customer}');
    route(JSON.stringify({ customer: 'a/../b' }));
    route(JSON.stringify({ customer: 'a/../b' }));
    route('not json');
    route(JSON.stringify({ customer: 'fine' }));
    expect(failed.map((f) => f.failure.code)).toEqual(['DynamicPartitioning.InvalidPartitionKey', 'DynamicPartitioning.InvalidPartitionKey', 'DynamicPartitioning.MetadataExtractionFailed.NotJson']);
    expect(failed[1]!.failure.message).toMatch(/partitionKeyFromQuery:customer has a "\." or "\.\." path segment/);
    expect(appended.map((a) => a.data)).toEqual(['{"customer":"fine"}']);
  });

  it('several keys: two sets of values that would join alike (a value holding NUL) are never taken for each other', () => {
    const { route, failed } = routerFor('{a: .a, b: .b}');
    route(JSON.stringify({ a: 'x\u0000y', b: 'z' }));
    route(JSON.stringify({ a: 'x', b: 'y\u0000z' }));
    expect(failed.map((f) => f.failure.message)).toEqual(['partition key partitionKeyFromQuery:a holds a control character', 'partition key partitionKeyFromQuery:b holds a control character']);
  });

  it('keys from the query and the transform together; a record the transform gave no key fails naming it', () => {
    const { route, appended, failed } = routerFor('{customer: .customer}', ['day']);
    route(JSON.stringify({ customer: 'c1' }), { day: '2026-12-02' });
    route(JSON.stringify({ customer: 'c1' }), { day: '2026-12-03' });
    route(JSON.stringify({ customer: 'c1' }));
    expect(appended.map((a) => a.tags.partitionKeys)).toEqual([
      { 'partitionKeyFromQuery:customer': 'c1', 'partitionKeyFromLambda:day': '2026-12-02' },
      { 'partitionKeyFromQuery:customer': 'c1', 'partitionKeyFromLambda:day': '2026-12-03' },
    ]);
    expect(failed.map((f) => f.failure.message)).toEqual(['the transform returned no metadata.partitionKeys.day']);
  });
});
