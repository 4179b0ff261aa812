import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { ShardProgress, type ProgressListener, type Segment } from '../../ack.js';
import { awsErrorName } from '../../aws.js';
import type { ByteBudget } from '../../budget.js';
import type { Logger } from '../../log.js';
import type { RecordSink, Source, SourceRecord } from '../../records.js';
import { decodeManifest, hourPath, manifestEntries, MANIFEST_SUFFIX, type Manifest } from '../../archive/manifest.js';
import { PendingSaves, type ReplayProgress } from '../../replay/progress.js';
import { RateLimit } from '../../replay/rate.js';
import { splitFramed, type Framing } from './framing.js';

const gunzipAsync = promisify(gunzip);
const HOUR_MS = 3_600_000;
/** Records are handed on in slices of at most this many: the rate limit and the budget act between them. */
const SLICE = 500;

export interface ArchiveWindow {
  /** Records whose arrival time is in [start, end), epoch ms. */
  readonly start: number;
  readonly end: number;
}

export interface ArchiveLocation {
  readonly client: S3Client;
  readonly bucket: string;
  /** The prefix the objects were written under (`clicks/`, or '' for the whole bucket). */
  readonly objectPrefix: string;
  /** Where their manifests are (s3Destination.manifests.prefix). */
  readonly manifestsPrefix: string;
  /** For an archive without manifests: how its records are split; they are then windowed by the time in each object's name. */
  readonly framing?: Framing | undefined;
}

/**
 * An object that a manifest's object key names starts within the hour of its oldest record: a
 * record arriving in the window may sit in an object that started up to the longest buffer
 * interval (900 s) earlier, and later under backpressure. The hours before the window that are
 * looked at.
 */
export const LATENESS_MS = HOUR_MS;

export interface ArchivedObject {
  readonly key: string;
  /** Undefined for an archive without manifests (split by framing). */
  readonly manifest?: Manifest;
  /** The object's time from its name, for an archive without manifests. */
  readonly time?: number;
}

/** The hours whose objects may hold records of the window (their first record's hour). */
export function hoursOf(window: ArchiveWindow): number[] {
  const hours: number[] = [];
  for (let hour = Math.floor((window.start - LATENESS_MS) / HOUR_MS) * HOUR_MS; hour < window.end; hour += HOUR_MS) hours.push(hour);
  return hours;
}

/** Every object of the archive that may hold records of the window, hour by hour, in key order: listed per hour, never the whole bucket. */
export async function* archivedObjects(location: ArchiveLocation, window: ArchiveWindow, signal?: AbortSignal): AsyncGenerator<ArchivedObject> {
  for (const hour of hoursOf(window)) {
    if (signal?.aborted) return;
    if (location.framing) {
      // Firehose's own layout: <prefix>yyyy/MM/dd/HH/<stream>-<version>-yyyy-MM-dd-HH-mm-ss-<id>.
      for (const key of await listKeys(location, `${location.objectPrefix}${hourPath(hour)}`)) {
        const time = timeInName(key);
        if (time !== undefined && time >= window.start && time < window.end) yield { key, time };
      }
      continue;
    }
    for (const manifestKey of await listKeys(location, `${location.manifestsPrefix}${hourPath(hour)}${location.objectPrefix}`)) {
      if (!manifestKey.endsWith(MANIFEST_SUFFIX)) continue;
      const manifest = await decodeManifest(await getObject(location, manifestKey), `s3://${location.bucket}/${manifestKey}`);
      if (manifest.lastArrival < window.start || manifest.firstArrival >= window.end) continue;
      yield { key: manifest.key, manifest };
    }
  }
}

/** How many of the manifest's records arrived in the window, and their bytes. */
export function inWindow(manifest: Manifest, window: ArchiveWindow): { records: number; bytes: number } {
  let records = 0;
  let bytes = 0;
  for (const e of manifestEntries(manifest)) {
    if (e.arrival >= window.start && e.arrival < window.end) {
      records++;
      bytes += e.length;
    }
  }
  return { records, bytes };
}

export interface ArchiveCounts {
  objects: number;
  /** Objects an earlier run of the same replay finished: not read again. */
  objectsSkipped: number;
  objectsDone: number;
  /** Records handed on, and their bytes. */
  records: number;
  bytes: number;
  /** Objects named by a manifest but not found (deleted since): their records cannot be replayed. */
  objectsMissing: number;
}

export interface ArchiveSourceOptions {
  readonly location: ArchiveLocation;
  /** The objects, when already listed (a replay plans first, for its totals); else listed as it goes. */
  readonly planned?: readonly ArchivedObject[];
  readonly window: ArchiveWindow;
  readonly progress: ReplayProgress;
  readonly maxRecordsPerSecond?: number | undefined;
  readonly maxBytesPerSecond?: number | undefined;
  readonly budget: ByteBudget;
  readonly log: Logger;
}

/**
 * The S3 archive as a source: a replay. Each object of the window is read (its manifest says where
 * each record starts, when it arrived and where it came from), its records of the window handed
 * on with their original shard, sequence numbers and partition key, through the target stream's
 * whole pipeline. A position here is an object: once every record of it reached an end, the object
 * is marked done in the replay's progress.
 */
export class ArchiveSource implements Source, ProgressListener {
  readonly identity: string;
  readonly counts: ArchiveCounts = { objects: 0, objectsSkipped: 0, objectsDone: 0, records: 0, bytes: 0, objectsMissing: 0 };
  /** One per object being replayed: its records in slices, in order; its "checkpoint" is how many reached an end. */
  private readonly objects = new Map<ShardProgress, { key: string; resumedAt: number; savedUpTo: number; bytesPerSlice: Map<string, number> }>();
  private readonly saves = new PendingSaves((err, what) => this.options.log.error('saving replay progress failed; a later run replays these records again', { ...what, error: err }));
  private readonly stopping = new AbortController();
  private readonly recordRate: RateLimit | undefined;
  private readonly byteRate: RateLimit | undefined;
  private readonly sliceRecords: number;

  constructor(private readonly options: ArchiveSourceOptions) {
    this.identity = `s3-archive/${options.location.bucket}/${options.location.objectPrefix}`;
    this.recordRate = options.maxRecordsPerSecond ? new RateLimit(options.maxRecordsPerSecond) : undefined;
    // Under a rate limit, a tenth of a second's records at a time: the rate stays even.
    this.sliceRecords = options.maxRecordsPerSecond ? Math.max(1, Math.min(SLICE, Math.floor(options.maxRecordsPerSecond / 10))) : SLICE;
    this.byteRate = options.maxBytesPerSecond ? new RateLimit(options.maxBytesPerSecond) : undefined;
  }

  get outstandingSegments(): number {
    let n = 0;
    for (const shard of this.objects.keys()) n += shard.outstandingSegments;
    return n;
  }

  private readToEnd = false;

  /** Stopped before it read every object of the window (SIGINT): the replay is resumed by running it again. */
  get stopped(): boolean {
    return !this.readToEnd;
  }

  status(): Readonly<Record<string, unknown>> {
    return { source: this.identity, ...this.counts };
  }

  async run(sink: RecordSink): Promise<void> {
    const { location, window, progress, budget, log } = this.options;
    const signal = this.stopping.signal;
    for await (const object of this.options.planned ?? archivedObjects(location, window, signal)) {
      if (signal.aborted) break;
      this.counts.objects++;
      if (progress.isDone(object.key)) {
        this.counts.objectsSkipped++;
        continue;
      }
      await budget.whenAvailable(signal);
      if (signal.aborted) break;
      let raw: Buffer;
      try {
        raw = await this.read(object);
      } catch (err) {
        if (awsErrorName(err) !== 'NoSuchKey') throw err;
        this.counts.objectsMissing++;
        log.warn('an archived object named by its manifest is gone; its records cannot be replayed', { key: object.key });
        continue;
      }
      // Records an earlier run of this replay brought to an end are not handed on again.
      const resumedAt = progress.doneUpTo(object.key);
      const records = this.recordsOf(object, raw);
      const shard = new ShardProgress(object.key, String(resumedAt), this);
      const state = { key: object.key, resumedAt, savedUpTo: resumedAt, bytesPerSlice: new Map<string, number>() };
      this.objects.set(shard, state);
      for (let i = resumedAt; i < records.length && !signal.aborted; i += this.sliceRecords) {
        const slice = records.slice(i, i + this.sliceRecords);
        let sliceBytes = 0;
        for (const r of slice) sliceBytes += r.data.length;
        await this.recordRate?.take(slice.length, signal);
        await this.byteRate?.take(sliceBytes, signal);
        if (signal.aborted) break;
        const end = String(i + slice.length);
        const segment = shard.open(end, slice.length, sliceBytes);
        state.bytesPerSlice.set(end, sliceBytes);
        for (const r of slice) r.segment = segment;
        this.counts.records += slice.length;
        this.counts.bytes += sliceBytes;
        sink.accept(slice);
      }
      if (signal.aborted) break;
      shard.markReadToEnd();
    }
    this.readToEnd = !signal.aborted;
  }

  private read(object: ArchivedObject): Promise<Buffer> {
    return readArchived(this.options.location, object);
  }

  private recordsOf(object: ArchivedObject, raw: Buffer): MutableRecord[] {
    return recordsOfObject(this.options.location, this.options.window, object, raw);
  }

  segmentReleased(): void {}


  /** An object's records reached an end further on (saved, so a re-run resumes there), or all of them did. */
  progressed(shard: ShardProgress): void {
    const state = this.objects.get(shard);
    if (!state) return;
    const upTo = Number(shard.checkpoint ?? 0);
    const records = upTo - state.savedUpTo;
    let bytes = 0;
    for (const [end, sliceBytes] of state.bytesPerSlice) {
      if (Number(end) > upTo) break;
      bytes += sliceBytes;
      state.bytesPerSlice.delete(end);
    }
    state.savedUpTo = upTo;
    const { progress } = this.options;
    const complete = shard.complete;
    if (complete) this.objects.delete(shard);
    this.saves.track(
      (async () => {
        await progress.objectUpTo(state.key, upTo, records, bytes);
        if (complete) {
          await progress.objectDone(state.key);
          this.counts.objectsDone++;
        }
      })(),
      { key: state.key },
    );
  }

  stop(): void {
    this.stopping.abort();
  }

  close(): Promise<boolean> {
    return this.saves.settled();
  }
}

async function listKeys(location: ArchiveLocation, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await location.client.send(new ListObjectsV2Command({ Bucket: location.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return keys.sort();
}

async function getObject(location: ArchiveLocation, key: string): Promise<Uint8Array> {
  const object = await location.client.send(new GetObjectCommand({ Bucket: location.bucket, Key: key }));
  return object.Body!.transformToByteArray();
}

/** `<stream>-<version>-yyyy-MM-dd-HH-mm-ss-<id>`: the object's time, from Firehose's file name. */
function timeInName(key: string): number | undefined {
  const m = /-(\d{4})-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-[^/]*$/.exec(key);
  if (!m) return undefined;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

type MutableRecord = { -readonly [K in keyof SourceRecord]: SourceRecord[K] };

/** An archived object's bytes, decompressed. */
export async function readArchived(location: ArchiveLocation, object: ArchivedObject): Promise<Buffer> {
  const body = await getObject(location, object.key);
  const gzipped = object.manifest ? object.manifest.encoding === 'GZIP' : object.key.endsWith('.gz');
  return gzipped ? await gunzipAsync(body) : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
}

/** The object's records of the window, in object order, with their original positions (their segment is set by whoever hands them on). */
export function recordsOfObject(location: ArchiveLocation, window: ArchiveWindow, object: ArchivedObject, raw: Buffer): MutableRecord[] {
  const out: MutableRecord[] = [];
  const none = undefined as unknown as Segment;
  if (object.manifest) {
    if (raw.length !== object.manifest.rawBytes) throw new Error(`s3://${location.bucket}/${object.key}: ${raw.length} bytes, its manifest says ${object.manifest.rawBytes}`);
    for (const e of manifestEntries(object.manifest)) {
      if (e.arrival < window.start || e.arrival >= window.end) continue;
      out.push({
        data: raw.subarray(e.offset, e.offset + e.length),
        partitionKey: e.partitionKey,
        shardId: e.shardId,
        sequenceNumber: e.sequenceNumber,
        subSequenceNumber: e.subSequenceNumber,
        approximateArrivalTimestamp: e.arrival,
        segment: none,
      });
    }
    return out;
  }
  // No manifest: split by the framing; positions name the object and the record's place in it.
  splitFramed(raw, location.framing!).forEach((data, i) => {
    out.push({ data, partitionKey: `${i}`, shardId: object.key, sequenceNumber: String(i), subSequenceNumber: 0, approximateArrivalTimestamp: object.time!, segment: none });
  });
  return out;
}
