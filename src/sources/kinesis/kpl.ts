import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

interface AggregatedRecordMessage {
  partition_key_table: string[];
  records: Array<{ partition_key_index: number | { toString(): string }; data: Buffer }>;
}

// The protobuf model of the KPL aggregation format, from aws-kinesis-agg. Its deaggregate()
// round-trips every record through base64; decoding the message directly keeps bytes as bytes.
const { AggregatedRecord } = require('aws-kinesis-agg/lib/common.js') as {
  AggregatedRecord: { decode(bytes: Uint8Array): AggregatedRecordMessage };
};

const MAGIC_0 = 0xf3;
const MAGIC_1 = 0x89;
const MAGIC_2 = 0x9a;
const MAGIC_3 = 0xc2;
const DIGEST_BYTES = 16;

/** KPL format: 4 magic bytes, a protobuf AggregatedRecord, the MD5 of that message. */
export function isAggregated(data: Buffer): boolean {
  return (
    data.length > 4 + DIGEST_BYTES &&
    data[0] === MAGIC_0 &&
    data[1] === MAGIC_1 &&
    data[2] === MAGIC_2 &&
    data[3] === MAGIC_3
  );
}

export interface UserRecord {
  readonly partitionKey: string;
  readonly data: Buffer;
}

/**
 * The user records inside a KPL-aggregated record, in order (their index is the sub-sequence
 * number), or undefined when the record carries the magic bytes but is not a valid aggregate — the
 * caller then passes it on whole, as it was received, rather than dropping it.
 */
export function deaggregate(data: Buffer): UserRecord[] | undefined {
  const message = data.subarray(4, data.length - DIGEST_BYTES);
  const digest = data.subarray(data.length - DIGEST_BYTES);
  if (!createHash('md5').update(message).digest().equals(digest)) return undefined;
  let decoded: AggregatedRecordMessage;
  try {
    decoded = AggregatedRecord.decode(message);
  } catch {
    return undefined;
  }
  const out: UserRecord[] = [];
  for (const item of decoded.records) {
    const index = typeof item.partition_key_index === 'number' ? item.partition_key_index : Number(item.partition_key_index.toString());
    const partitionKey = decoded.partition_key_table[index];
    if (partitionKey === undefined) return undefined;
    out.push({ partitionKey, data: item.data ?? Buffer.alloc(0) });
  }
  return out;
}
