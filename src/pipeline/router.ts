import type { BufferSet, BufferTags } from '../buffer.js';
import type { Clock } from '../clock.js';
import type { Destination } from '../destination.js';
import { QueryError } from '../partitioning/query.js';
import type { SourceRecord } from '../records.js';
import type { RecordEnds } from './record-ends.js';
import type { PipelineSettings } from '../pipeline-settings.js';

/** The tags of an unpartitioned buffer: shared, not made per record. */
const NO_TAGS: BufferTags = {};
const MAX_PARTITION_KEY_BYTES = 512;
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;
/** Partitions whose verdict is remembered; the cache starts over past this. */
const CHECKED_PARTITIONS = 10_000;

/** Why a partition key value cannot name a place, or undefined when it can. */
export function partitionKeyProblem(name: string, value: unknown): string | undefined {
  if (typeof value !== 'string') return `partition key ${name} is ${value === null ? 'null' : typeof value}, not a string`;
  if (value.length === 0) return `partition key ${name} is empty`;
  const bytes = Buffer.byteLength(value);
  if (bytes > MAX_PARTITION_KEY_BYTES) return `partition key ${name} is ${bytes} bytes long; at most ${MAX_PARTITION_KEY_BYTES}`;
  if (CONTROL.test(value)) return `partition key ${name} holds a control character`;
  if (value.split('/').some((segment) => segment === '..' || segment === '.')) return `partition key ${name} has a "." or ".." path segment: ${JSON.stringify(value.slice(0, 80))}`;
  return undefined;
}

/**
 * Puts each record (as transformed) into its partition's buffer. With dynamic partitioning, a
 * record whose keys cannot be found, or cannot name a place, ends in the error output as
 * partitioning-failed — never lost, never blocking its shard.
 */
/** One partition as its records are routed to it: its buffer's key and tags, or why it cannot be. */
interface Partition {
  readonly key: string;
  readonly tags: BufferTags;
  readonly problem: string | undefined;
}

export class Router {
  private readonly verdicts = new Map<string, string | undefined>();
  /**
   * Partitions by their key values: a record of a partition seen before costs one lookup, not a
   * keys object, a JSON.stringify and a tags object of its own.
   */
  private readonly partitions = new Map<string, Partition>();

  constructor(
    private readonly settings: PipelineSettings,
    private readonly objects: BufferSet,
    private readonly ends: RecordEnds,
    private readonly destination: Destination,
    private readonly clock: Clock,
  ) {}

  private get perShard(): boolean {
    return this.settings.buffer.perShard === true;
  }

  route(record: SourceRecord, lambdaKeys: Readonly<Record<string, string>> | undefined): void {
    const partitioning = this.settings.partitioning;
    if (!partitioning) {
      // Exactly-once: a buffer per shard, so each object holds one shard's records in order.
      this.objects.append(this.perShard ? `shard:${record.shardId}` : '', NO_TAGS, record);
      return;
    }
    let partition: Partition;
    try {
      partition = record.partitionKeys ? this.partition({ ...record.partitionKeys }) : this.partitionOf(record, lambdaKeys, partitioning);
    } catch (err) {
      // Whatever went wrong, this record ends in the error output: a throw here would abandon the
      // rest of its read, whose positions could then never be released.
      const notJson = err instanceof SyntaxError;
      this.ends.failed(record, {
        errorOutputType: 'partitioning-failed',
        code: notJson ? 'DynamicPartitioning.MetadataExtractionFailed.NotJson' : 'DynamicPartitioning.MetadataExtractionFailed',
        message: notJson ? `the record is not JSON: ${err.message}` : String((err as Error)?.message ?? err),
        attemptsMade: 1,
        endedAt: this.clock.now(),
      });
      return;
    }
    if (partition.problem !== undefined) {
      this.ends.failed(record, { errorOutputType: 'partitioning-failed', code: 'DynamicPartitioning.InvalidPartitionKey', message: partition.problem, attemptsMade: 1, endedAt: this.clock.now() });
      return;
    }
    this.objects.append(partition.key, partition.tags, record);
  }

  /** The record's partition, from the query's values and the transform's keys, as seen before when it was. */
  private partitionOf(record: SourceRecord, lambdaKeys: Readonly<Record<string, string>> | undefined, partitioning: NonNullable<PipelineSettings['partitioning']>): Partition {
    const query = this.settings.processing?.metadataExtraction;
    const found = query ? (query.fromBytes(record.data) ?? query.evaluate(JSON.parse(record.data.toString('utf8')))) : undefined;
    // The values as one string: one value as it is, several joined by NUL. Two sets of values can
    // join alike only when a value holds a NUL (which no valid one does): those are not looked up.
    let id = '';
    let count = 0;
    let nul = false;
    for (const name of partitioning.queryKeys) {
      const value = found![name]!;
      id = count++ === 0 ? value : `${id}\u0000${value}`;
      nul ||= value.includes('\u0000');
    }
    for (const name of partitioning.lambdaKeys) {
      const value = lambdaKeys?.[name];
      if (value === undefined) throw new QueryError(`the transform returned no metadata.partitionKeys.${name}`);
      id = count++ === 0 ? value : `${id}\u0000${value}`;
      nul ||= value.includes('\u0000');
    }
    const remembered = count === 1 || !nul;
    const seen = remembered ? this.partitions.get(id) : undefined;
    if (seen) return seen;
    const keys: Record<string, string> = {};
    for (const name of partitioning.queryKeys) keys[`partitionKeyFromQuery:${name}`] = found![name]!;
    for (const name of partitioning.lambdaKeys) keys[`partitionKeyFromLambda:${name}`] = lambdaKeys![name]!;
    const partition = this.partition(keys);
    if (remembered) {
      if (this.partitions.size >= CHECKED_PARTITIONS) this.partitions.clear();
      this.partitions.set(id, partition);
    }
    return partition;
  }

  private partition(keys: Record<string, string>): Partition {
    const key = JSON.stringify(keys);
    return { key, tags: { partitionKeys: Object.freeze(keys) }, problem: this.check(key, keys) };
  }

  /** Each partition is checked once: its values, then whether the destination can name it. */
  private check(key: string, keys: Readonly<Record<string, string>>): string | undefined {
    if (this.verdicts.has(key)) return this.verdicts.get(key);
    let problem: string | undefined;
    for (const [name, value] of Object.entries(keys)) {
      problem = partitionKeyProblem(name, value);
      if (problem) break;
    }
    problem ??= this.destination.checkPartition?.(keys);
    if (this.verdicts.size >= CHECKED_PARTITIONS) this.verdicts.clear();
    this.verdicts.set(key, problem);
    return problem;
  }
}
