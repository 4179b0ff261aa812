import { promisify } from 'node:util';
import { gunzip, gzip } from 'node:zlib';
import type { Encoding } from '../codecs.js';
import type { SourceRecord } from '../records.js';

const gzipAsync = promisify(gzip);
const gunzipAsync = promisify(gunzip);

/**
 * An object's manifest: what it holds, record by record, so the archive can be read back exactly
 * (split again without a delimiter, binary records intact, filtered by arrival time, each record
 * with its source position). Columnar and gzip'd: one array per field, arrival times as offsets
 * from the first, shards as indexes into one list. Record i starts at the sum of the lengths (and
 * delimiters) before it, in the object's bytes once decompressed.
 */
export interface Manifest {
  readonly format: 'firehose-manifest';
  readonly version: 1;
  readonly deliveryStream: string;
  readonly bucket: string;
  /** The object this manifest describes. */
  readonly key: string;
  readonly encoding: Encoding;
  /** What follows each record in the object ("\n" with appendNewlineDelimiter, else ""). */
  readonly delimiter: string;
  readonly records: number;
  /**
   * The object's bytes once decompressed. For PARQUET, rows are the records, in this order, and
   * lengths and rawBytes are those of the records before conversion (no offsets into the file).
   */
  readonly rawBytes: number;
  /** Arrival times: the first (epoch ms) and, per record, milliseconds after it. */
  readonly firstArrival: number;
  readonly lastArrival: number;
  readonly shards: readonly string[];
  readonly columns: {
    readonly shard: readonly number[];
    readonly sequenceNumber: readonly string[];
    readonly subSequenceNumber: readonly number[];
    readonly partitionKey: readonly string[];
    readonly arrival: readonly number[];
    readonly length: readonly number[];
  };
}

export interface ManifestEntry {
  readonly offset: number;
  readonly length: number;
  readonly arrival: number;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly subSequenceNumber: number;
  readonly partitionKey: string;
}

/** Collects a buffer's manifest as records are appended: a few array slots per record, the strings shared with the record. */
export class ManifestBuilder {
  private readonly shards: string[] = [];
  private readonly shardIndex = new Map<string, number>();
  private readonly shard: number[] = [];
  private readonly sequenceNumber: string[] = [];
  private readonly subSequenceNumber: number[] = [];
  private readonly partitionKey: string[] = [];
  private readonly arrivalAt: number[] = [];
  private readonly length: number[] = [];
  private lastShard: string | undefined;
  private lastShardIndex = 0;
  /** Records appended, then taken out of the object (a Parquet row that could not be converted). */
  private readonly excluded = new Set<number>();

  add(record: SourceRecord): void {
    if (record.shardId !== this.lastShard) {
      let index = this.shardIndex.get(record.shardId);
      if (index === undefined) {
        index = this.shards.push(record.shardId) - 1;
        this.shardIndex.set(record.shardId, index);
      }
      this.lastShard = record.shardId;
      this.lastShardIndex = index;
    }
    this.shard.push(this.lastShardIndex);
    this.sequenceNumber.push(record.sequenceNumber);
    this.subSequenceNumber.push(record.subSequenceNumber);
    this.partitionKey.push(record.partitionKey);
    this.arrivalAt.push(record.approximateArrivalTimestamp);
    this.length.push(record.data.length);
  }

  get records(): number {
    return this.length.length - this.excluded.size;
  }

  /** The record appended `index`-th (from 0) is not in the object after all. */
  exclude(index: number): void {
    this.excluded.add(index);
  }

  build(object: { deliveryStream: string; bucket: string; key: string; encoding: Encoding; delimiter: string }): Manifest {
    const kept = <T>(column: readonly T[]) => (this.excluded.size === 0 ? column : column.filter((_, i) => !this.excluded.has(i)));
    const shard = kept(this.shard);
    const sequenceNumber = kept(this.sequenceNumber);
    const subSequenceNumber = kept(this.subSequenceNumber);
    const partitionKey = kept(this.partitionKey);
    const arrivalAt = kept(this.arrivalAt);
    const length = kept(this.length);
    let rawBytes = 0;
    for (const n of length) rawBytes += n + object.delimiter.length;
    let first = Infinity;
    let last = -Infinity;
    for (const t of arrivalAt) {
      if (t < first) first = t;
      if (t > last) last = t;
    }
    if (length.length === 0) first = last = 0;
    return {
      format: 'firehose-manifest',
      version: 1,
      ...object,
      records: length.length,
      rawBytes,
      firstArrival: first,
      lastArrival: last,
      shards: this.shards,
      columns: {
        shard,
        sequenceNumber,
        subSequenceNumber,
        partitionKey,
        arrival: arrivalAt.map((t) => t - first),
        length,
      },
    };
  }
}

export const MANIFEST_SUFFIX = '.manifest.json.gz';

const pad2 = (n: number) => (n < 10 ? '0' : '') + n;

/** `yyyy/MM/dd/HH/` of a time, in UTC: the hour a manifest is filed under. */
export function hourPath(time: number): string {
  const t = new Date(time);
  return `${t.getUTCFullYear()}/${pad2(t.getUTCMonth() + 1)}/${pad2(t.getUTCDate())}/${pad2(t.getUTCHours())}/`;
}

/**
 * Where an object's manifest goes: `<manifests prefix><yyyy/MM/dd/HH of its first record's arrival>/<object key>.manifest.json.gz`.
 * Time first, then the object's own key: a replay lists one hour of one prefix (`clicks/`,
 * `customer=a/`) without listing the bucket, whatever the objects' prefix expressions are.
 */
export function manifestKey(manifestsPrefix: string, objectKey: string, firstArrival: number): string {
  return `${manifestsPrefix}${hourPath(firstArrival)}${objectKey}${MANIFEST_SUFFIX}`;
}

export function encodeManifest(manifest: Manifest): Promise<Buffer> {
  return gzipAsync(JSON.stringify(manifest), { level: 9 });
}

export class ManifestError extends Error {}

export async function decodeManifest(bytes: Uint8Array, where: string): Promise<Manifest> {
  let parsed: unknown;
  try {
    parsed = JSON.parse((await gunzipAsync(bytes)).toString('utf8'));
  } catch (err) {
    throw new ManifestError(`${where}: not a gzip'd JSON manifest (${(err as Error).message})`);
  }
  const m = parsed as Manifest;
  if (m?.format !== 'firehose-manifest') throw new ManifestError(`${where}: not a firehose manifest`);
  if (m.version !== 1) throw new ManifestError(`${where}: manifest version ${String(m.version)}; this firehose reads version 1`);
  const n = m.records;
  const c = m.columns;
  for (const [name, column] of Object.entries(c)) {
    if (!Array.isArray(column) || column.length !== n) throw new ManifestError(`${where}: column ${name} has ${Array.isArray(column) ? column.length : 'no'} entries for ${n} records`);
  }
  return m;
}

/** The manifest's records, in object order, with their offsets in the decompressed object. */
export function* manifestEntries(m: Manifest): Generator<ManifestEntry> {
  let offset = 0;
  const { shard, sequenceNumber, subSequenceNumber, partitionKey, arrival, length } = m.columns;
  for (let i = 0; i < m.records; i++) {
    yield {
      offset,
      length: length[i]!,
      arrival: m.firstArrival + arrival[i]!,
      shardId: m.shards[shard[i]!]!,
      sequenceNumber: sequenceNumber[i]!,
      subSequenceNumber: subSequenceNumber[i]!,
      partitionKey: partitionKey[i]!,
    };
    offset += length[i]! + m.delimiter.length;
  }
}
