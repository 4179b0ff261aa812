import { Queue, type Job } from 'bullmq';
import { redact } from './secrets.js';
import type { Redis } from 'ioredis';
import type { Logger } from './log.js';
import { redisConnection, type RedisSettings } from './redis/connection.js';
import type { ErrorOutputType } from './failure.js';
import type { SourceRecord } from './records.js';

/** What a dead letter holds: the record's bytes, where it came from, where it was going, and why it failed. */
export interface DeadLetter {
  readonly deliveryStreamName: string;
  readonly destination: string;
  /** The stage it failed in; processing failures re-enter before the transform when redriven. */
  readonly errorOutputType?: ErrorOutputType;
  readonly errorCode: string;
  readonly errorMessage: string;
  /** Attempts over every time it was parked: a failed redrive raises it. */
  readonly attemptsMade: number;
  readonly lastAttemptAt: number;
  readonly arrivalTimestamp: number;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly subSequenceNumber: number;
  readonly partitionKey: string;
  /** With dynamic partitioning: the partition a record that failed after its transform was bound for. */
  readonly partitionKeys?: Readonly<Record<string, string>>;
  /** The record's bytes, base64 (after the transform, when it failed after it). */
  readonly data: string;
}

export interface DeadLetterEntry {
  readonly id: string;
  readonly letter: DeadLetter;
  readonly addedAt: number;
}

export interface DeadLetterFilter {
  readonly errorCode?: string;
  readonly since?: number;
  readonly id?: string;
}

/** What happened to letters handed to park(): parked, too large for the queue's bound ever, or left for later (the queue is full). */
export interface ParkResult {
  readonly parked: number;
  readonly tooLarge: readonly DeadLetter[];
  readonly rest: readonly DeadLetter[];
}

/** Where records that will not be delivered are parked for a later redrive. */
export interface DeadLetterParking {
  readonly deliveryStreamName: string;
  park(letters: readonly DeadLetter[]): Promise<ParkResult>;
}

const STATES = ['waiting', 'paused', 'delayed', 'prioritized'] as const;
const PAGE = 500;

/**
 * Records that will not be delivered, parked in Redis (a BullMQ queue per delivery stream, under
 * the stream's hash tag so Redis Cluster keeps it on one slot). Entering it releases the records'
 * positions. Entries are keyed by source position: a record parked again (a failed redrive, a
 * re-read after a crash) updates its entry, raising its attempts. The queue is bounded in bytes;
 * when full, parking waits — positions stay held, reading pauses — until a redrive or a purge.
 */
export class DeadLetterQueue implements DeadLetterParking {
  readonly queue: Queue;
  private readonly bytesKey: string;

  constructor(
    private readonly redis: Redis,
    readonly deliveryStreamName: string,
    readonly maxBytes: number,
  ) {
    const prefix = `{fh:${deliveryStreamName}}`;
    this.queue = new Queue('dlq', { connection: redis, prefix });
    // The connection's own listener logs its errors once, as JSON (redisConnection); an 'error' without a listener would be printed raw.
    this.queue.on('error', () => undefined);
    this.bytesKey = `${prefix}:dlq:bytes`;
  }

  static letter(
    record: SourceRecord,
    deliveryStreamName: string,
    destination: string,
    failure: { errorOutputType: ErrorOutputType; errorCode: string; errorMessage: string; attemptsMade: number; lastAttemptAt: number; partitionKeys?: Readonly<Record<string, string>> | undefined },
  ): DeadLetter {
    const { partitionKeys, ...rest } = failure;
    return {
      deliveryStreamName,
      destination,
      ...rest,
      errorMessage: redact(rest.errorMessage), // an endpoint's answer may echo a credential
      arrivalTimestamp: record.approximateArrivalTimestamp,
      shardId: record.shardId,
      sequenceNumber: record.sequenceNumber,
      subSequenceNumber: record.subSequenceNumber,
      partitionKey: record.partitionKey,
      ...(partitionKeys ? { partitionKeys } : {}),
      data: record.data.toString('base64'),
    };
  }

  async park(letters: readonly DeadLetter[]): Promise<ParkResult> {
    const tooLarge = letters.filter((l) => l.data.length > this.maxBytes);
    const fitting = letters.filter((l) => l.data.length <= this.maxBytes);
    // A position already parked is updated in place, its attempts added up: it takes no more room.
    const existing = await Promise.all(fitting.map((l) => this.queue.getJob(letterId(l)) as Promise<Job<DeadLetter> | undefined>));
    let parked = 0;
    const fresh: DeadLetter[] = [];
    for (let i = 0; i < fitting.length; i++) {
      const job = existing[i];
      const letter = fitting[i]!;
      if (!job) {
        fresh.push(letter);
        continue;
      }
      await job.updateData({ ...letter, attemptsMade: job.data.attemptsMade + letter.attemptsMade });
      const grown = letter.data.length - job.data.data.length;
      if (grown !== 0) await this.redis.incrby(this.bytesKey, grown);
      parked++;
    }
    let held = Number((await this.redis.get(this.bytesKey)) ?? 0);
    const room: DeadLetter[] = [];
    for (const letter of fresh) {
      if (held + letter.data.length > this.maxBytes) break;
      held += letter.data.length;
      room.push(letter);
    }
    for (let i = 0; i < room.length; i += PAGE) {
      const part = room.slice(i, i + PAGE);
      await this.queue.addBulk(part.map((letter) => ({ name: letter.errorCode, data: letter, opts: { jobId: letterId(letter), removeOnComplete: true, removeOnFail: false } })));
      let bytes = 0;
      for (const l of part) bytes += l.data.length;
      await this.redis.incrby(this.bytesKey, bytes);
      parked += part.length;
    }
    return { parked, tooLarge, rest: fresh.slice(room.length) };
  }

  /** Every entry matching the filter, a page at a time, oldest first; entries removed meanwhile are skipped. */
  async *entries(filter: DeadLetterFilter = {}): AsyncGenerator<DeadLetterEntry[]> {
    if (filter.id) {
      const job = (await this.queue.getJob(filter.id)) as Job<DeadLetter> | undefined;
      if (job?.id) yield [{ id: job.id, letter: job.data, addedAt: job.timestamp }];
      return;
    }
    // The ids first: removing entries while paging by index would shift the pages.
    const ids: string[] = [];
    for (let start = 0; ; start += 10 * PAGE) {
      const page = await this.queue.getRanges([...STATES], start, start + 10 * PAGE - 1, true);
      ids.push(...page);
      if (page.length < 10 * PAGE) break;
    }
    for (let i = 0; i < ids.length; i += PAGE) {
      const jobs = (await Promise.all(ids.slice(i, i + PAGE).map((id) => this.queue.getJob(id)))) as Array<Job<DeadLetter> | undefined>;
      const page: DeadLetterEntry[] = [];
      for (const job of jobs) {
        if (!job?.id) continue;
        if (filter.errorCode && !job.data.errorCode.includes(filter.errorCode)) continue;
        if (filter.since !== undefined && job.data.lastAttemptAt < filter.since) continue;
        page.push({ id: job.id, letter: job.data, addedAt: job.timestamp });
      }
      if (page.length > 0) yield page;
    }
  }

  /** Every matching entry at once (small queues, tests); entries() pages through large ones. */
  async list(filter: DeadLetterFilter = {}): Promise<DeadLetterEntry[]> {
    const all: DeadLetterEntry[] = [];
    for await (const page of this.entries(filter)) all.push(...page);
    return all;
  }

  /** Removes entries; with `unchanged`, only those still as they were read (not parked again since). Returns how many were removed. */
  async remove(entries: readonly DeadLetterEntry[], options: { unchanged?: boolean } = {}): Promise<number> {
    let bytes = 0;
    let removed = 0;
    for (const entry of entries) {
      if (options.unchanged) {
        const now = (await this.queue.getJob(entry.id)) as Job<DeadLetter> | undefined;
        if (!now || now.data.attemptsMade !== entry.letter.attemptsMade || now.data.lastAttemptAt !== entry.letter.lastAttemptAt) continue;
      }
      if ((await this.queue.remove(entry.id)) === 1) {
        bytes += entry.letter.data.length;
        removed++;
      }
    }
    if (bytes > 0) await this.redis.decrby(this.bytesKey, bytes);
    return removed;
  }

  /** How many entries match: counted by Redis when nothing filters by content, else by reading them. */
  async count(filter: DeadLetterFilter = {}): Promise<number> {
    if (!filter.errorCode && filter.since === undefined && !filter.id) return (await this.size()).entries;
    let n = 0;
    for await (const page of this.entries(filter)) n += page.length;
    return n;
  }

  async size(): Promise<{ entries: number; bytes: number }> {
    const entries = await this.queue.getJobCountByTypes(...STATES);
    return { entries, bytes: Number((await this.redis.get(this.bytesKey)) ?? 0) };
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

export const letterId = (l: Pick<DeadLetter, 'shardId' | 'sequenceNumber' | 'subSequenceNumber'>) => `${l.shardId}:${l.sequenceNumber}:${l.subSequenceNumber}`;

/** BullMQ needs a connection that retries forever (maxRetriesPerRequest: null). */
export function dlqConnection(settings: RedisSettings, log?: Logger): Redis {
  return redisConnection(settings, { maxRetriesPerRequest: null }, log);
}
