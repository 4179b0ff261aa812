/**
 * Crash points for the chaos run: `FIREHOSE_FAILPOINTS="before-upload:0.02,after-intent:0.02,after-upload:0.02"`
 * makes the process die (SIGKILL, as a crash would: no cleanup, no final checkpoint) at that point
 * with that probability. Unset, each check is one Map lookup.
 */
export type FailpointName = 'before-upload' | 'after-intent' | 'mid-upload' | 'after-upload';

const configured = parse(process.env.FIREHOSE_FAILPOINTS ?? '');

function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, probability] = part.split(':');
    const p = Number(probability ?? '1');
    if (!name || !(p >= 0 && p <= 1)) throw new Error(`FIREHOSE_FAILPOINTS: expected name:probability (0–1), got ${JSON.stringify(part)}`);
    out.set(name, p);
  }
  return out;
}

export function failpoint(name: FailpointName): void {
  const p = configured.get(name);
  if (p === undefined || Math.random() >= p) return;
  process.stderr.write(`failpoint ${name}: crashing\n`);
  process.kill(process.pid, 'SIGKILL');
}
