import { describe, expect, it } from 'vitest';
import { startingPoint, type ReadFrom, type StartingFacts } from '../src/sources/kinesis/starting-point.js';

const T = '2026-11-30T12:00:00.000Z';

function facts(over: Partial<StartingFacts> & { checkpoints?: Record<string, string>; reads?: Record<string, ReadFrom> } = {}): StartingFacts {
  return {
    startingPosition: over.startingPosition ?? 'TRIM_HORIZON',
    startingTimestamp: over.startingTimestamp,
    origin: over.origin ?? { startedAt: Date.parse(T), firstStart: true },
    checkpoint: (id) => over.checkpoints?.[id],
    readFrom: (id) => over.reads?.[id],
  };
}

const child = { shardId: 'shardId-000000000002', parents: ['shardId-000000000000'], closed: false };
const closedParent = { shardId: 'shardId-000000000000', parents: [], closed: true };

describe('where a Kinesis shard starts', () => {
  it('after its own checkpoint, whatever else holds', () => {
    expect(startingPoint(child, facts({ checkpoints: { [child.shardId]: '42' }, startingPosition: 'LATEST' }))).toEqual({ type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: '42' });
  });

  it('a child whose parent an earlier run checkpointed, or this run reads from a checkpoint or its start, starts at its beginning', () => {
    expect(startingPoint(child, facts({ checkpoints: { [closedParent.shardId]: 'SHARD_END' }, startingPosition: 'LATEST' }))).toEqual({ type: 'TRIM_HORIZON' });
    expect(startingPoint(child, facts({ reads: { [closedParent.shardId]: { type: 'LATEST' } }, startingPosition: 'LATEST' }))).toEqual({ type: 'TRIM_HORIZON' });
    expect(startingPoint(child, facts({ reads: { [closedParent.shardId]: { type: 'TRIM_HORIZON' } } }))).toEqual({ type: 'TRIM_HORIZON' });
  });

  it('a child honours LATEST when LATEST skipped its closed parent, and AT_TIMESTAMP when its parent was read from that time', () => {
    const latest = facts({ startingPosition: 'LATEST' });
    expect(startingPoint(closedParent, latest)).toBe('skip');
    expect(startingPoint(child, facts({ startingPosition: 'LATEST', reads: { [closedParent.shardId]: 'skip' } }))).toEqual({ type: 'LATEST' });
    const at = { type: 'AT_TIMESTAMP', timestamp: new Date(T) } as const;
    expect(startingPoint(closedParent, facts({ startingPosition: 'AT_TIMESTAMP', startingTimestamp: T }))).toEqual(at);
    expect(startingPoint(child, facts({ startingPosition: 'AT_TIMESTAMP', startingTimestamp: T, reads: { [closedParent.shardId]: at } }))).toEqual(at);
  });

  it('LATEST after the first start reads from the first start, so a crash before the first checkpoint skips nothing', () => {
    expect(startingPoint(child, facts({ startingPosition: 'LATEST', origin: { startedAt: Date.parse(T), firstStart: false } }))).toEqual({ type: 'AT_TIMESTAMP', timestamp: new Date(T) });
  });
});
