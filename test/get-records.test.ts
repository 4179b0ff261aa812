import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeGetRecords, MalformedResponse } from '../src/sources/kinesis/get-records.js';

const record = (data: Buffer, i: number, extra = '') =>
  `{"SequenceNumber":"4959${String(i).padStart(52, '0')}","ApproximateArrivalTimestamp":1.764612345678E9,"Data":"${data.toString('base64')}","PartitionKey":"key \\"${i}\\" \\u00e9"${extra}}`;

describe('GetRecords decoded from its bytes', () => {
  it('gives back each record\'s exact bytes, partition key (escapes too), sequence number and arrival; the iterator and lag', () => {
    const payloads = Array.from({ length: 500 }, (_, i) => randomBytes(i % 7 === 0 ? 0 : (i * 37) % 3000));
    const body = Buffer.from(
      `{ "MillisBehindLatest": 1234, "NextShardIterator": "AAAA/+==", "Records": [${payloads.map((p, i) => record(p, i, i % 3 ? ',"EncryptionType":"NONE"' : '')).join(',\n')}], "ChildShards": [{"ShardId":"s-2","ParentShards":["s-1"],"HashKeyRange":{"StartingHashKey":"0","EndingHashKey":"1"}}] }`,
    );
    const decoded = decodeGetRecords(body);
    expect(decoded.millisBehindLatest).toBe(1234);
    expect(decoded.nextShardIterator).toBe('AAAA/+==');
    expect(decoded.data).toHaveLength(500);
    payloads.forEach((p, i) => {
      expect(decoded.data[i]!.equals(p)).toBe(true);
      expect(decoded.partitionKeys[i]).toBe(`key "${i}" é`);
      expect(decoded.sequenceNumbers[i]).toBe(`4959${String(i).padStart(52, '0')}`);
      expect(decoded.arrivals[i]).toBe(1_764_612_345_678);
    });
    expect(decoded.dataBytes).toBe(payloads.reduce((n, p) => n + p.length, 0));
  });

  it('arrival times as Kinesis and its emulators write them, in whole milliseconds; repeated partition keys', () => {
    const times = ['1764612345.678', '1.764612345678E9', '1.764612345678e+9', '1764612345', '1764612345.6789', '17646123456780e-4', '1764612345.0004'];
    const keys = ['a', 'a', 'b', 'a', 'a', 'éé', 'éé'];
    const body = Buffer.from(
      `{"Records":[${times.map((t, i) => `{"Data":"${Buffer.from(`r${i}`).toString('base64')}","PartitionKey":"${keys[i]}","ApproximateArrivalTimestamp":${t},"SequenceNumber":"${i + 1}","\\u0058tra":"ignored"}`).join(',')}],"NextShardIterator":"it","MillisBehindLatest":0}`,
    );
    const decoded = decodeGetRecords(body);
    expect(decoded.arrivals).toEqual([1_764_612_345_678, 1_764_612_345_678, 1_764_612_345_678, 1_764_612_345_000, 1_764_612_345_679, 1_764_612_345_678, 1_764_612_345_000]);
    expect(decoded.partitionKeys).toEqual(keys);
    expect(decoded.data.map((d) => d.toString())).toEqual(times.map((_, i) => `r${i}`));
    expect(() => decodeGetRecords(Buffer.from('{"Records":[{"Data":"QUJD","SequenceNumber":"1","ApproximateArrivalTimestamp":x}]}'))).toThrow('a number expected');
  });

  it('a shard at its end: no records, a null iterator', () => {
    const decoded = decodeGetRecords(Buffer.from('{"MillisBehindLatest":0,"NextShardIterator":null,"Records":[]}'));
    expect(decoded).toMatchObject({ data: [], nextShardIterator: undefined, millisBehindLatest: 0 });
  });

  it('refuses what is not a GetRecords response, naming what is wrong', () => {
    expect(() => decodeGetRecords(Buffer.from('{"Records":[{"Data":"@@@@","SequenceNumber":"1"}]}'))).toThrow(new MalformedResponse('a Data field that is not base64'));
    expect(() => decodeGetRecords(Buffer.from('{"Records":[{"Data":"QUJD","PartitionKey":"k"}]}'))).toThrow('without Data or SequenceNumber');
    expect(() => decodeGetRecords(Buffer.from('{"Records":[{"Data":"QUJD"'))).toThrow(MalformedResponse);
  });
});
