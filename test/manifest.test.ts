import { describe, expect, it } from 'vitest';
import { decodeManifest, encodeManifest, manifestEntries, manifestKey, ManifestBuilder } from '../src/archive/manifest.js';
import type { SourceRecord } from '../src/records.js';

const record = (shardId: string, sequenceNumber: string, subSequenceNumber: number, data: string, arrival: number): SourceRecord =>
  ({ shardId, sequenceNumber, subSequenceNumber, partitionKey: `pk-${data}`, approximateArrivalTimestamp: arrival, data: Buffer.from(data) }) as unknown as SourceRecord;

describe('manifests', () => {
  it('describe every record exactly, across shards, KPL sub-records and records taken out, and read back the same', async () => {
    const base = '4968075649290288681476798080444585596054691373637854822';
    const records = [
      record('shardId-000000000000', `${base}6`, 0, 'a', 1_000),
      record('shardId-000000000001', '49680756492913889331167281042386932451201094516931575826', 0, 'b', 1_001),
      record('shardId-000000000000', `${base}6`, 1, 'cc', 1_002), // a KPL aggregate's second record: the same sequence number
      record('shardId-000000000000', '49680756492902886814767980804445855960546913736378548999', 0, 'ddd', 1_003),
      record('shardId-000000000001', '49680756492913889331167281042386932451201094516931576000', 0, 'e', 1_010),
    ];
    const builder = new ManifestBuilder();
    for (const r of records) builder.add(r);
    builder.exclude(1); // a row conversion refused
    const manifest = builder.build({ deliveryStream: 's', bucket: 'b', key: 'k', encoding: 'GZIP', delimiter: '\n' });
    expect(manifest.records).toBe(4);
    // The shard's later numbers are written as their difference from the one before.
    expect(manifest.columns.sequenceNumber[1]).toBe('56:');
    expect(manifest.columns.sequenceNumber[2]!.length).toBeLessThan(20);
    const read = await decodeManifest(await encodeManifest(manifest), 'here');
    const kept = records.filter((_, i) => i !== 1);
    expect([...manifestEntries(read)]).toEqual(
      kept.map((r, i) => ({
        offset: kept.slice(0, i).reduce((sum, k) => sum + k.data.length + 1, 0),
        length: r.data.length,
        arrival: r.approximateArrivalTimestamp,
        shardId: r.shardId,
        sequenceNumber: r.sequenceNumber,
        subSequenceNumber: r.subSequenceNumber,
        partitionKey: r.partitionKey,
      })),
    );
    expect(read.rawBytes).toBe(1 + 2 + 3 + 1 + 4);
  });

  it('written straight from the columns, a manifest is the one build() describes, escapes and all (and an arrival that is not a whole millisecond)', async () => {
    const builder = new ManifestBuilder();
    const keys = ['plain', 'quote " and \\ backslash', 'tab\tnewline\n', 'é ✓ 😀', ''];
    for (let i = 0; i < 2_000; i++) {
      const r = record(`shardId-00000000000${i % 3}`, String(49680756492902886814767980804445855960546913736378548999n + BigInt(i * 7)), i % 4, 'x'.repeat(i % 50), 1_764_612_345_678 + i * 3 + (i === 7 ? 0.5 : 0));
      builder.add({ ...r, partitionKey: keys[i % keys.length]! } as SourceRecord);
    }
    const object = { deliveryStream: 's', bucket: 'b', key: 'k', encoding: 'GZIP' as const, delimiter: '' };
    const direct = await decodeManifest(await builder.encode(object), 'direct');
    expect(direct).toEqual(builder.build(object));
    const empty = new ManifestBuilder();
    expect(await decodeManifest(await empty.encode(object), 'empty')).toEqual(empty.build(object));
  });

  it('are filed under the hour of the first record, then the object key', () => {
    expect(manifestKey('_manifests/', 'clicks/2026/12/02/03/clicks-1-x.gz', Date.UTC(2026, 11, 2, 3, 59, 59))).toBe('_manifests/2026/12/02/03/clicks/2026/12/02/03/clicks-1-x.gz.manifest.json.gz');
  });

  it('refuse what is not a manifest, saying where', async () => {
    await expect(decodeManifest(Buffer.from('nope'), 's3://b/x')).rejects.toThrow("s3://b/x: not a gzip'd JSON manifest");
  });
});
