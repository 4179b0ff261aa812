const pad2 = (n: number) => (n < 10 ? '0' : '') + n;

/**
 * Firehose's S3 object key: `<evaluated prefix><deliveryStreamName>-<version>-YYYY-MM-dd-HH-mm-ss-<uuid><extension>`,
 * in UTC, the time being the arrival time of the oldest record in the object. The evaluated prefix
 * carries the `YYYY/MM/dd/HH/` part unless the configured prefix has its own timestamp.
 */
export function objectKey(options: {
  prefix: string;
  deliveryStreamName: string;
  oldestArrivalTimestamp: number;
  id: string;
  extension: string;
  deliveryStreamVersion?: number;
}): string {
  const t = new Date(options.oldestArrivalTimestamp);
  const yyyy = String(t.getUTCFullYear());
  const MM = pad2(t.getUTCMonth() + 1);
  const dd = pad2(t.getUTCDate());
  const HH = pad2(t.getUTCHours());
  const mm = pad2(t.getUTCMinutes());
  const ss = pad2(t.getUTCSeconds());
  const version = options.deliveryStreamVersion ?? 1;
  return (
    options.prefix +
    `${options.deliveryStreamName}-${version}-${yyyy}-${MM}-${dd}-${HH}-${mm}-${ss}-${options.id}${options.extension}`
  );
}
