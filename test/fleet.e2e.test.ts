import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig, type ServiceConfig } from '../src/config.js';
import { readLeases, type LeaseRow } from '../src/leases-cli.js';
import { firehose, type CliProcess } from './helpers/cli.js';
import {
  SequenceTracker,
  checkpoints,
  compareSequence,
  createStream,
  framedRecord,
  putAll,
  readObjects,
  serviceYaml,
  splitFramed,
  suitePeers,
  waitFor,
  type Peers,
} from './helpers/harness.js';

const BUCKET = 'fleet';
/** The harness's runtime.leaseDurationInSeconds. */
const LEASE_MS = 2_000;
const RENEWAL_MS = LEASE_MS / 3;

/** A producer of records with unique ids, `<tag>-<n>`, until stopped. */
class Producer {
  readonly put: string[] = [];
  readonly sequences = new SequenceTracker();
  private running = true;
  private done: Promise<void> | undefined;
  tag = 'a';

  constructor(
    private readonly peers: Peers,
    private readonly streamName: string,
  ) {}

  start(perBatch = 100, everyMs = 100): void {
    this.done = (async () => {
      let n = 0;
      while (this.running) {
        const batch = Array.from({ length: perBatch }, () => {
          const id = `${this.tag}-${n++}`;
          return { id, data: framedRecord(Buffer.from(`${id} ${'x'.repeat(200 + (n % 300))}`)), partitionKey: `k${n}` };
        });
        const results = await putAll(this.peers.kinesisClient, this.streamName, batch);
        results.forEach((r) => this.sequences.note(r.shardId, r.sequenceNumber));
        this.put.push(...batch.map((b) => b.id));
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

/** The worker logged that it reads the shard under that epoch (Redis may name an owner a moment before it reads). */
function reads(worker: CliProcess, shardId: string, epoch: number): boolean {
  return worker
    .stderr()
    .split('\n')
    .some((line) => {
      if (!line.includes('"reading shard"')) return false;
      const entry = JSON.parse(line) as { shardId?: string; epoch?: number };
      return entry.shardId === shardId && entry.epoch === epoch;
    });
}

const idOf = (record: Buffer) => record.subarray(9).toString().split(' ')[0]!;

/** Open leases per owner (none: unowned or expired). */
function counts(rows: LeaseRow[], now = Date.now()): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of rows) {
    if (r.state !== 'open') continue;
    const owner = r.owner !== null && Date.parse(r.expiresAt!) > now ? r.owner : '(none)';
    out.set(owner, (out.get(owner) ?? 0) + 1);
  }
  return out;
}

describe('a fleet of workers shares a stream through leases in Redis', () => {
  const peers = suitePeers([BUCKET], { redisAppendOnly: true });
  const workers: CliProcess[] = [];
  const producers: Producer[] = [];
  afterEach(async () => {
    for (const p of producers.splice(0)) await p.stop().catch(() => undefined);
    for (const w of workers.splice(0)) {
      w.child.kill('SIGCONT');
      w.child.kill('SIGKILL');
      await w.exited;
    }
  });

  async function writeConfig(name: string, shards: number, prefix = `${name}/`): Promise<{ path: string; config: ServiceConfig }> {
    const yaml = serviceYaml(peers, [{ deliveryStreamName: name, streamName: name, bucket: BUCKET, sizeInMBs: 1, prefix }]);
    const path = join(await mkdtemp(join(tmpdir(), 'firehose-fleet-')), `${prefix.replaceAll('/', '-')}.yaml`);
    await writeFile(path, yaml);
    if (shards > 0) await createStream(peers.kinesisClient, name, shards);
    return { path, config: parseConfig(yaml) };
  }

  function start(configPath: string, workerId: string): CliProcess {
    const worker = firehose(['run', '--config', configPath, '--worker-id', workerId], { FIREHOSE_LOG_LEVEL: 'info' });
    workers.push(worker);
    return worker;
  }

  async function liveWorkers(name: string): Promise<number> {
    const [seconds] = await peers.redisClient.time();
    return peers.redisClient.zcount(`{fh:${name}}:workers:kinesis/us-east-1/${name}`, `(${Number(seconds) * 1000}`, '+inf');
  }

  it('3 workers on 8 shards come to 3/3/2; a killed one\'s shards are taken over; a fourth gets its share by hand-off; nothing is lost', async () => {
    const { path, config } = await writeConfig('fleet', 8);
    const producer = new Producer(peers, 'fleet');
    producers.push(producer);
    producer.start();
    const w = [start(path, 'w1'), start(path, 'w2'), start(path, 'w3')];

    await waitFor(async () => (await liveWorkers('fleet')) === 3, 30_000, 'three workers registered');
    const registered = Date.now();
    await waitFor(async () => [...counts(await readLeases(config, peers.redisClient)).values()].sort().join('/') === '2/3/3', 3 * LEASE_MS, '3/3/2');
    const balancedAfter = Date.now() - registered;
    expect(balancedAfter).toBeLessThanOrEqual(2 * LEASE_MS);

    // SIGKILL one: its shards are the others' within 2 lease durations plus one renewal.
    const before = counts(await readLeases(config, peers.redisClient));
    const victim = ['w1', 'w2', 'w3'].find((id) => before.get(id) === 3)!;
    w[Number(victim.slice(1)) - 1]!.child.kill('SIGKILL');
    const killedAt = Date.now();
    await waitFor(
      async () => {
        const c = counts(await readLeases(config, peers.redisClient));
        return !c.has(victim) && !c.has('(none)') && [...c.values()].sort().join('/') === '4/4';
      },
      4 * LEASE_MS,
      'the killed worker\'s shards taken over',
    );
    const takeoverMs = Date.now() - killedAt;
    expect(takeoverMs).toBeLessThanOrEqual(2 * LEASE_MS + RENEWAL_MS + 300);

    // A fourth joins: it gets its share from the loaded ones by hand-off, without a forced take.
    const w4 = start(path, 'w4');
    await waitFor(async () => {
      const c = counts(await readLeases(config, peers.redisClient));
      return [...c.values()].sort().join('/') === '2/3/3' && (c.get('w4') ?? 0) >= 2;
    }, 30_000, 'the fourth worker\'s share');
    expect(w4.stderr()).toMatch(/asked for a lease to balance the fleet/);

    // `firehose leases` shows it as Redis has it, for people and (--json) for scripts.
    const cli = firehose(['leases', '--config', path, '--json']);
    expect((await cli.exited).code).toBe(0);
    const listed = JSON.parse(cli.stdout()) as LeaseRow[];
    expect(listed).toHaveLength(8);
    for (const row of listed) {
      expect(Object.keys(row).sort()).toEqual(['checkpoint', 'deliveryStream', 'epoch', 'expiresAt', 'owner', 'parents', 'shardId', 'state']);
      expect(row).toMatchObject({ deliveryStream: 'fleet', state: 'open', parents: [] });
      expect(row.owner).toMatch(/^w[1-4]$/);
      expect(row.owner).not.toBe(victim);
      expect(row.epoch).toBeGreaterThanOrEqual(1);
    }
    const human = firehose(['leases', '--config', path]);
    expect((await human.exited).code).toBe(0);
    expect(human.stdout().split('\n')[0]).toMatch(/^DELIVERY STREAM\s+SHARD\s+OWNER\s+EPOCH\s+STATE\s+EXPIRES IN\s+PARENTS\s+CHECKPOINT$/);
    expect(human.stdout()).toContain('shardId-000000000007');

    // SIGTERM one: after its final checkpoint it hands its leases back, and the others take them within a renewal.
    const leaving = counts(await readLeases(config, peers.redisClient));
    const quitter = ['w2', 'w3', 'w4'].find((id) => leaving.get(id) === 3)!;
    const quitting = [...w, w4][Number(quitter.slice(1)) - 1]!;
    quitting.child.kill('SIGTERM');
    expect((await quitting.exited).code).toBe(0);
    const exitedAt = Date.now();
    await waitFor(async () => {
      const c = counts(await readLeases(config, peers.redisClient));
      return !c.has(quitter) && !c.has('(none)') && [...c.values()].sort().join('/') === '4/4';
    }, 4 * LEASE_MS, 'the stopped worker\'s shards taken');
    const pickedUpMs = Date.now() - exitedAt;
    expect(pickedUpMs).toBeLessThanOrEqual(RENEWAL_MS * 1.1 + 400);

    await new Promise((r) => setTimeout(r, 1_000));
    await producer.stop();
    await new Promise((r) => setTimeout(r, 2_000)); // the last records read
    // A clean stop delivers what is buffered, checkpoints it and hands every lease back.
    const last = Object.fromEntries(producer.sequences.lastByShard);
    for (const worker of w.filter((x) => x.child.exitCode === null && x.child.signalCode === null).concat(w4)) worker.child.kill('SIGTERM');
    for (const worker of [...w, w4]) await worker.exited;
    for (const worker of [...w, w4]) {
      expect(worker.stderr()).not.toMatch(/hand-off was overdue/);
      expect(worker.stderr()).not.toMatch(/"level":"error"/);
    }

    expect(await checkpoints(peers.redisClient, 'fleet')).toEqual(last);
    const rows = await readLeases(config, peers.redisClient);
    expect(rows.filter((r) => r.owner !== null)).toEqual([]); // every lease handed back at the stop
    const delivered = (await readObjects(peers.s3Client, BUCKET, 'fleet/')).flatMap((o) => splitFramed(o.body)).map(idOf);
    const seen = new Set(delivered);
    expect(producer.put.filter((id) => !seen.has(id))).toEqual([]);
    // At-least-once: the kill repeats what the killed worker had read past its last checkpoint, nothing else.
    const duplicates = delivered.length - seen.size;
    console.log(`fleet: ${producer.put.length} records, ${duplicates} delivered twice (the SIGKILL), balanced in ${balancedAfter} ms, takeover after SIGKILL ${takeoverMs} ms, after SIGTERM ${pickedUpMs} ms`);
  });

  it('a worker SIGSTOPped past its lease wakes to find its shards taken: it reads nothing more of them, and no checkpoint moves backwards', async () => {
    const shards = 4;
    await createStream(peers.kinesisClient, 'paused', shards);
    // Each worker writes under its own prefix, so the objects show who wrote what.
    const one = await writeConfig('paused', 0, 'paused/w1/');
    const two = await writeConfig('paused', 0, 'paused/w2/');
    const producer = new Producer(peers, 'paused');
    producers.push(producer);
    producer.start(50, 100);
    const w1 = start(one.path, 'w1');
    start(two.path, 'w2');
    const w2 = workers.at(-1)!;
    const settled = async () => {
      const rows = await readLeases(one.config, peers.redisClient);
      const balanced = [...counts(rows).entries()].sort().join() === 'w1,2,w2,2';
      return balanced && rows.every((r) => reads(r.owner === 'w1' ? w1 : w2, r.shardId, r.epoch));
    };
    await waitFor(settled, 30_000, '2/2, each worker reading its shards');
    const taken = (await readLeases(one.config, peers.redisClient)).filter((r) => r.owner === 'w1');

    // Checkpoints are watched throughout: none may ever move backwards.
    const backwards: string[] = [];
    let watching = true;
    const watcher = (async () => {
      const seen = new Map<string, string>();
      while (watching) {
        const stored = await checkpoints(peers.redisClient, 'paused').catch(() => undefined);
        if (!stored) break; // the peers stopped: the test failed before the end
        for (const [shard, seq] of Object.entries(stored)) {
          const prev = seen.get(shard);
          if (prev !== undefined && seq !== 'SHARD_END' && compareSequence(seq, prev) < 0) backwards.push(`${shard}: ${prev} → ${seq}`);
          seen.set(shard, seq);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    })();

    w1.child.kill('SIGSTOP');
    producer.tag = 'during';
    await waitFor(async () => {
      const rows = await readLeases(one.config, peers.redisClient);
      return taken.every((t) => rows.find((r) => r.shardId === t.shardId)?.owner === 'w2');
    }, 3 * LEASE_MS, 'w2 to take w1\'s shards');
    const afterTake = await readLeases(one.config, peers.redisClient);
    for (const t of taken) expect(afterTake.find((r) => r.shardId === t.shardId)!.epoch).toBe(t.epoch + 1);
    // Paused 3 lease durations in all; the records put meanwhile are all read by w2 before w1 wakes.
    await new Promise((r) => setTimeout(r, 3 * LEASE_MS - 2_500));
    producer.tag = 'after';
    await new Promise((r) => setTimeout(r, 2_500));
    w1.child.kill('SIGCONT');

    await waitFor(() => /lost a lease/.test(w1.stderr()), 10_000, 'w1 to see its leases lost').catch((e: unknown) => {
      console.log(w1.stderr().split('\n').slice(-30).join('\n'));
      throw e;
    });
    // The fleet rebalances to 2/2 by hand-off; then everything is delivered at a clean stop.
    await waitFor(settled, 30_000, '2/2 again');
    await producer.stop();
    await new Promise((r) => setTimeout(r, 2_000)); // the last records read
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) expect((await w.exited).code).toBe(0);
    watching = false;
    await watcher;

    expect(backwards).toEqual([]);
    expect(await checkpoints(peers.redisClient, 'paused')).toEqual(Object.fromEntries(producer.sequences.lastByShard));
    const byW1 = (await readObjects(peers.s3Client, BUCKET, 'paused/w1/')).flatMap((o) => splitFramed(o.body)).map(idOf);
    const byW2 = (await readObjects(peers.s3Client, BUCKET, 'paused/w2/')).flatMap((o) => splitFramed(o.body)).map(idOf);
    // Records put while w1 was stopped were read by w2 alone: w1 read nothing under the leases it lost.
    expect(byW1.filter((id) => id.startsWith('during-'))).toEqual([]);
    expect(byW2.some((id) => id.startsWith('during-'))).toBe(true);
    const seen = new Set([...byW1, ...byW2]);
    expect(producer.put.filter((id) => !seen.has(id))).toEqual([]);
  });

  it('16 shards over 4 workers stay balanced for a minute with no lease moves; Redis commands per delivered MB reported', async () => {
    const { path, config } = await writeConfig('steady', 16);
    const producer = new Producer(peers, 'steady');
    producers.push(producer);
    producer.start(100, 100);
    for (const id of ['w1', 'w2', 'w3', 'w4']) start(path, id);
    const even = async () => [...counts(await readLeases(config, peers.redisClient)).values()].join('/') === '4/4/4/4';
    await waitFor(even, 30_000, '4/4/4/4');
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS)); // hand-offs adopted
    const epochs = async () => (await readLeases(config, peers.redisClient)).reduce((sum, r) => sum + r.epoch, 0);
    const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await peers.redisClient.info('stats'))![1]);
    const startEpochs = await epochs();
    const startCommands = await commands();
    const objectsBefore = new Set((await readObjects(peers.s3Client, BUCKET, 'steady/')).map((o) => o.key));
    const startedAt = Date.now();
    let unbalanced = 0;
    while (Date.now() - startedAt < 60_000) {
      await new Promise((r) => setTimeout(r, 1_000));
      if (!(await even())) unbalanced++;
    }
    const moves = (await epochs()) - startEpochs;
    const redisCommands = (await commands()) - startCommands - 60 * 3; // less this test's own polling
    await producer.stop();
    const delivered = (await readObjects(peers.s3Client, BUCKET, 'steady/')).filter((o) => !objectsBefore.has(o.key)).reduce((n, o) => n + o.body.length, 0);
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) expect((await w.exited).code).toBe(0);

    expect(unbalanced).toBe(0);
    expect(moves).toBe(0);
    expect(delivered).toBeGreaterThan(5 * 1024 * 1024);
    console.log(`steady: 16 shards / 4 workers, 60 s: ${moves} lease moves, ${redisCommands} Redis commands for ${(delivered / 1048576).toFixed(1)} MB delivered = ${Math.round(redisCommands / (delivered / 1048576))} commands per MB (${Math.round(redisCommands / 60)} per second for the fleet)`);
  });
});
