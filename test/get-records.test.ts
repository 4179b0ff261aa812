import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeGetRecords, GetRecordsDecoder, MalformedResponse, type DecodedGetRecords } from '../src/sources/kinesis/get-records.js';

const record = (data: Buffer, i: number, extra = '') =>
  `{"SequenceNumber":"4959${String(i).padStart(52, '0')}","ApproximateArrivalTimestamp":1.764612345678E9,"Data":"${data.toString('base64')}","PartitionKey":"key \\"${i}\\" \\u00e9"${extra}}`;

/** A body pushed as the socket would hand it over: in chunks cut at the given offsets. */
function decodeInChunks(body: Buffer, cuts: number[], contentLength: number | undefined = body.length): DecodedGetRecords {
  const decoder = new GetRecordsDecoder(contentLength);
  let at = 0;
  for (const cut of [...cuts, body.length]) {
    decoder.push(body.subarray(at, cut));
    at = cut;
  }
  return decoder.end();
}

const plain = (d: DecodedGetRecords) => ({ ...d, data: d.data.map((b) => b.toString('base64')) });

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

  it('decodes a response as it arrives: cut anywhere, the records are the same as from the whole body', () => {
    const payloads = Array.from({ length: 24 }, (_, i) => randomBytes(i % 5 === 0 ? 0 : (i * 53) % 240));
    const body = Buffer.from(
      `{"NextShardIterator":"it-1","Records":[${payloads.map((p, i) => record(p, i, i % 4 ? ',"EncryptionType":"NONE"' : '')).join(', ')}],"MillisBehindLatest":98765,"ChildShards":[{"ShardId":"s-2","ParentShards":["s-1"]}]}\n`,
    );
    const whole = plain(decodeGetRecords(body));
    expect(whole.data).toHaveLength(24);
    // Every single cut, and runs of small chunks from every start: each byte of the grammar meets a chunk's end.
    for (let cut = 1; cut < body.length; cut++) expect(plain(decodeInChunks(body, [cut]))).toEqual(whole);
    for (const size of [1, 3, 7, 64]) {
      const cuts = Array.from({ length: Math.floor((body.length - 1) / size) }, (_, i) => (i + 1) * size);
      expect(plain(decodeInChunks(body, cuts))).toEqual(whole);
      expect(plain(decodeInChunks(body, cuts, undefined))).toEqual(whole);
    }
  });

  it('a record larger than many chunks, and a body without Content-Length: each record whole, in blocks', () => {
    const big = randomBytes(3 << 20);
    const payloads = [randomBytes(10), big, randomBytes(1 << 20), randomBytes(5)];
    const body = Buffer.from(`{"Records":[${payloads.map((p, i) => record(p, i)).join(',')}],"NextShardIterator":"it","MillisBehindLatest":0}`);
    const cuts = Array.from({ length: Math.floor(body.length / 65_536) }, (_, i) => (i + 1) * 65_536);
    for (const contentLength of [body.length, undefined]) {
      const decoded = decodeInChunks(body, cuts, contentLength);
      expect(decoded.data.map((d, i) => d.equals(payloads[i]!))).toEqual([true, true, true, true]);
      expect(decoded.dataBytes).toBe(payloads.reduce((n, p) => n + p.length, 0));
    }
  });

  it('a response cut short, or wrong after a chunk boundary, fails at its end with what is wrong', () => {
    const body = Buffer.from(`{"Records":[${record(Buffer.from('abc'), 1)},${record(Buffer.from('def'), 2)}],"MillisBehindLatest":0}`);
    for (const length of [0, 1, 20, body.length - 30, body.length - 1]) {
      expect(() => decodeInChunks(body.subarray(0, length), [Math.floor(length / 2)])).toThrow(MalformedResponse);
    }
    const bad = Buffer.from(body.toString().replace('"MillisBehindLatest":0}', '"MillisBehindLatest":0]'));
    expect(() => decodeInChunks(bad, [40, 80])).toThrow('expected , or } at byte');
    expect(() => decodeInChunks(Buffer.concat([body, Buffer.from(' x')]), [body.length - 5])).toThrow(`text after the end of a GetRecords response, at byte ${body.length + 1}`);
    const notBase64 = Buffer.from(body.toString().replace(Buffer.from('def').toString('base64'), '@@@@'));
    expect(() => decodeInChunks(notBase64, [30, 60])).toThrow('a Data field that is not base64');
  });

  it('records decoded together, on their own (large ones), across blocks, and cut just after their Data: each record\'s own bytes', () => {
    // 60 KiB of base64 and more is decoded on its own; smaller ones together, 128 KiB at a time; blocks of 1 MiB without a Content-Length.
    const payloads = Array.from({ length: 60 }, (_, i) => randomBytes(i % 9 === 0 ? 70_000 + i : 1_000 + ((i * 7919) % 30_000)));
    const body = Buffer.from(`{"Records":[${payloads.map((p, i) => record(p, i)).join(',')}],"NextShardIterator":"it","MillisBehindLatest":0}`);
    const afterData: number[] = [];
    for (let at = body.indexOf('"PartitionKey"'); at >= 0; at = body.indexOf('"PartitionKey"', at + 1)) afterData.push(at + 3);
    const everyFewKiB = Array.from({ length: Math.floor(body.length / 3_001) }, (_, i) => (i + 1) * 3_001);
    for (const cuts of [afterData, everyFewKiB, [...afterData, ...everyFewKiB].sort((a, b) => a - b)]) {
      // A Content-Length that understates the body too: the buffers it sized only start smaller.
      for (const contentLength of [body.length, undefined, 100]) {
        const decoded = decodeInChunks(body, cuts, contentLength);
        expect(decoded.data.map((d, i) => d.equals(payloads[i]!))).toEqual(payloads.map(() => true));
        expect(decoded.dataBytes).toBe(payloads.reduce((n, p) => n + p.length, 0));
      }
    }
  });
});
