/**
 * Keys of one delivery stream share a hash tag, so Redis Cluster keeps them on one slot.
 * Checkpoints belong to the source's identity: a delivery stream pointed at another stream never
 * inherits the old one's positions.
 */
export const redisKeys = {
  checkpoints: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:checkpoints:${source}`,
  checkpointOrder: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:checkpoint-order:${source}`,
  origin: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:origin:${source}`,
  /** Shard → lease (owner, fencing epoch, expiry, parents, state): src/leases/table.ts. */
  leases: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:leases:${source}`,
  /** Exactly-once: per shard, the batch recorded before its upload and not yet committed. */
  intents: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:intents:${source}`,
  /** The workers reading the source: worker id → heartbeat expiry (Redis time, ms). */
  workers: (deliveryStreamName: string, source: string) => `{fh:${deliveryStreamName}}:workers:${source}`,
  /** Every source identity this delivery stream has read. */
  sources: (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:sources`,
  /** Before checkpoints were keyed by source (0.1): adopted once by the first source. */
  legacyCheckpoints: (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:checkpoints`,
  legacyOrigin: (deliveryStreamName: string) => `{fh:${deliveryStreamName}}:origin`,
};
