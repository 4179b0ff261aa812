import { Queue, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { SourceRecord } from './records.js';

/** What a dead letter holds: the record's bytes, where it came from, where it was going, and why it failed. */
export interface DeadLetter {
  readonly deliveryStreamName: string;
  readonly destination: string;
  readonly errorCode: string;
  readonly errorMessage: string;
  readonly attemptsMade: number;
  readonly lastAttemptAt: number;
  readonly arrivalTimestamp: number;
  readonly shardId: string;
  readonly sequenceNumber: string;
  readonly subSequenceNumber: number;
  readonly partitionKey: string;
  /** The record's bytes, base64. */
  readonly data: string;
}

export interface DeadLetterEntry {
  readonly id: string;
  readonly letter: DeadLetter;
  readonly addedAt: number;
}

export class DeadLetterQueueFull extends Error {}

/**
 * Records that exhausted their retries, parked in Redis (a BullMQ queue per delivery stream, under
 * the stream's hash tag so Redis Cluster keeps it on one slot). Entering it releases the records'
 * positions. Entries are keyed by source position, so a record delivered to the DLQ twice (after a
 * crash) is one entry. The queue is bounded in bytes; when full, adding fails and the delivery
 * stream stops releasing — reading pauses — until an operator redrives or purges.
 */
export class DeadLetterQueue {
  readonly queue: Queue;
  private readonly bytesKey: string;

  constructor(
    private readonly redis: Redis,
    readonly deliveryStreamName: string,
    private readonly maxBytes: number,
  ) {
    const prefix = `{fh:${deliveryStreamName}}`;
    this.queue = new Queue('dlq', { connection: redis, prefix });
    this.bytesKey = `${prefix}:dlq:bytes`;
  }

  static letter(record: SourceRecord, deliveryStreamName: string, destination: string, failure: { errorCode: string; errorMessage: string; attemptsMade: number; lastAttemptAt: number }): DeadLetter {
    return {
      deliveryStreamName,
      destination,
      ...failure,
      arrivalTimestamp: record.approximateArrivalTimestamp,
      shardId: record.shardId,
      sequenceNumber: record.sequenceNumber,
      subSequenceNumber: record.subSequenceNumber,
      partitionKey: record.partitionKey,
      data: record.data.toString('base64'),
    };
  }

  async add(letters: readonly DeadLetter[]): Promise<void> {
    // A position already parked (delivered here again after a crash) is not added twice.
    const exists = await Promise.all(letters.map((l) => this.queue.getJob(letterId(l))));
    const fresh = letters.filter((_, i) => !exists[i]);
    if (fresh.length === 0) return;
    const bytes = fresh.reduce((n, l) => n + l.data.length, 0);
    const held = Number((await this.redis.get(this.bytesKey)) ?? 0);
    if (held + bytes > this.maxBytes) {
      throw new DeadLetterQueueFull(
        `the dead-letter queue of ${this.deliveryStreamName} holds ${held} bytes; ${bytes} more would pass its ${this.maxBytes}-byte bound`,
      );
    }
    await this.queue.addBulk(
      fresh.map((letter) => ({ name: letter.errorCode, data: letter, opts: { jobId: letterId(letter), removeOnComplete: true, removeOnFail: false } })),
    );
    await this.redis.incrby(this.bytesKey, bytes);
  }

  async list(filter: { errorCode?: string; since?: number } = {}, limit = 10_000): Promise<DeadLetterEntry[]> {
    const jobs = (await this.queue.getJobs(['waiting', 'paused', 'delayed', 'prioritized'], 0, limit - 1, true)) as Array<Job<DeadLetter>>;
    return jobs
      .filter((job): job is Job<DeadLetter> & { id: string } => job !== undefined && job.id !== undefined)
      .filter((job) => !filter.errorCode || job.data.errorCode.includes(filter.errorCode))
      .filter((job) => filter.since === undefined || job.data.lastAttemptAt >= filter.since)
      .map((job) => ({ id: job.id, letter: job.data, addedAt: job.timestamp }));
  }

  async remove(entries: readonly DeadLetterEntry[]): Promise<void> {
    let bytes = 0;
    for (const entry of entries) {
      await this.queue.remove(entry.id);
      bytes += entry.letter.data.length;
    }
    if (bytes > 0) await this.redis.decrby(this.bytesKey, bytes);
  }

  async size(): Promise<{ entries: number; bytes: number }> {
    const entries = await this.queue.getJobCountByTypes('waiting', 'paused', 'delayed', 'prioritized');
    return { entries, bytes: Number((await this.redis.get(this.bytesKey)) ?? 0) };
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

const letterId = (l: DeadLetter) => `${l.shardId}:${l.sequenceNumber}:${l.subSequenceNumber}`;

/** BullMQ needs a connection that retries forever (maxRetriesPerRequest: null). */
export function dlqConnection(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: null });
}
