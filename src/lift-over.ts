/**
 * A CloudFormation `AWS::KinesisFirehose::DeliveryStream` definition, camelCased, lifts over: its
 * property names are mapped onto this service's, and the properties that mean nothing here (IAM
 * roles, CloudWatch logging, tags) are accepted and dropped with one note each, so the same
 * definition validates and runs. Applied to the raw document before validation.
 */

/** CloudFormation's destination properties → the destination keys here. */
const DESTINATIONS: Readonly<Record<string, string>> = {
  extendedS3DestinationConfiguration: 's3Destination',
  s3DestinationConfiguration: 's3Destination',
  httpEndpointDestinationConfiguration: 'httpEndpointDestination',
  amazonopensearchserviceDestinationConfiguration: 'amazonOpenSearchServiceDestination',
  amazonOpenSearchServiceDestinationConfiguration: 'amazonOpenSearchServiceDestination',
};

/** Dropped wherever they appear in a stream, with why. */
const IGNORED_ANYWHERE: Readonly<Record<string, string>> = {
  roleARN: 'ignored: credentials come from the AWS SDK default chain of this process (environment, profile, instance or task role)',
  cloudWatchLoggingOptions: 'ignored: logs go to stderr as JSON lines (see "Logs"); ship them from there',
};

/** Dropped at the stream's top level, with why. */
const IGNORED_AT_STREAM: Readonly<Record<string, string>> = {
  tags: 'ignored: tags are an AWS resource property',
  deliveryStreamEncryptionConfigurationInput: 'ignored: server-side encryption of a Direct PUT stream; objects are encrypted by s3Destination.encryptionConfiguration',
};

export interface LiftOver {
  /** One line per property mapped or dropped, with its path. */
  readonly notes: string[];
  /** What cannot be lifted over (a Direct PUT or MSK stream). */
  readonly problems: string[];
}

/** Where a renamed property is in the document validated, and where it was in the file: messages name the file's. */
const renames = new WeakMap<LiftOver, Array<[string, string]>>();

/** A validation message about a lifted property, with the path as the file has it. */
export function pathAsWritten(result: LiftOver, message: string): string {
  for (const [lifted, written] of renames.get(result) ?? []) {
    if (message.startsWith(lifted) && /^[.:[]/.test(message.slice(lifted.length))) return written + message.slice(lifted.length);
  }
  return message;
}

function renamed(result: LiftOver, lifted: string, written: string): void {
  const list = renames.get(result) ?? [];
  // Longest first, so a property inside a renamed one maps before its parent does.
  list.push([lifted, written]);
  list.sort((a, b) => b[0].length - a[0].length);
  renames.set(result, list);
}

export function liftOver(document: unknown, result: LiftOver): unknown {
  if (!isMapping(document) || !Array.isArray(document.deliveryStreams)) return document;
  return { ...document, deliveryStreams: document.deliveryStreams.map((stream, i) => liftStream(stream, `deliveryStreams[${i}]`, result)) };
}

function liftStream(stream: unknown, path: string, result: LiftOver): unknown {
  if (!isMapping(stream)) return stream;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(stream)) {
    const at = `${path}.${key}`;
    if (key === 'deliveryStreamType') {
      if (value === 'KinesisStreamAsSource') result.notes.push(`${at}: KinesisStreamAsSource: the stream reads kinesisStreamSourceConfiguration`);
      else result.problems.push(`${at}: must be KinesisStreamAsSource, got ${JSON.stringify(value)}: a delivery stream here reads a Kinesis data stream (Direct PUT and MSK sources are not offered)`);
      continue;
    }
    if (key in IGNORED_AT_STREAM) {
      result.notes.push(`${at}: ${IGNORED_AT_STREAM[key]}`);
      continue;
    }
    if (key === 'kinesisStreamSourceConfiguration') {
      out.kinesisStreamSource = liftKinesisSource(value, at, result);
      renamed(result, `${path}.kinesisStreamSource.streamARN`, `${at}.kinesisStreamARN`);
      renamed(result, `${path}.kinesisStreamSource`, at);
      continue;
    }
    const destination = DESTINATIONS[key];
    if (destination) {
      result.notes.push(`${at}: read as ${destination}`);
      out[destination] = dropIgnored(value, at, result);
      renamed(result, `${path}.${destination}`, at);
      continue;
    }
    out[key] = key.endsWith('Destination') ? dropIgnored(value, at, result) : value;
  }
  return out;
}

/** `{kinesisStreamARN, roleARN}` → `{streamARN}`; the stream's region comes from its ARN. */
function liftKinesisSource(value: unknown, path: string, result: LiftOver): unknown {
  if (!isMapping(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(dropIgnored(value, path, result) as Record<string, unknown>)) {
    if (key === 'kinesisStreamARN') out.streamARN = v;
    else out[key] = v;
  }
  result.notes.push(`${path}: read as kinesisStreamSource`);
  return out;
}

function dropIgnored(value: unknown, path: string, result: LiftOver): unknown {
  if (Array.isArray(value)) return value.map((v, i) => dropIgnored(v, `${path}[${i}]`, result));
  if (!isMapping(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const at = `${path}.${key}`;
    if (key in IGNORED_ANYWHERE) {
      result.notes.push(`${at}: ${IGNORED_ANYWHERE[key]}`);
      continue;
    }
    out[key] = dropIgnored(v, at, result);
  }
  return out;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
