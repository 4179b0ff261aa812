import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firehose } from './helpers/cli.js';

async function configFile(text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'firehose-cli-')), 'streams.yaml');
  await writeFile(path, text);
  return path;
}

const broken = `
redis: { url: "redis://127.0.0.1:1" }
deliveryStreams:
  - deliveryStreamName: clicks
    kinesisStreamSource: { streamName: clicks, startingPosition: SOMETIME }
    s3Destination:
      bucket: archive
      bufferingHints: { sizeInMBs: 0, intervalInSeconds: 300 }
`;

describe('firehose CLI', () => {
  it('validate prints every problem with its path and exits non-zero', async () => {
    const run = firehose(['validate', '--config', await configFile(broken)]);
    expect((await run.exited).code).toBe(2);
    expect(run.stderr()).toContain('deliveryStreams[0].s3Destination.bufferingHints.sizeInMBs: must be 1–128, got 0');
    expect(run.stderr()).toContain('deliveryStreams[0].kinesisStreamSource.startingPosition: must be one of');
  });

  it('validate accepts the example configuration', async () => {
    const run = firehose(['validate', '--config', 'config/example.yaml']);
    expect((await run.exited).code).toBe(0);
    expect(run.stdout()).toContain('ok (1 delivery stream(s))');
  });

  it('run refuses to start on an invalid configuration', async () => {
    const run = firehose(['run', '--config', await configFile(broken)]);
    expect((await run.exited).code).toBe(2);
    expect(run.stderr()).toContain('sizeInMBs: must be 1–128, got 0');
    expect(run.stderr()).not.toContain('"msg":"started"');
  });

  it('says what is wrong with the command line', async () => {
    const missing = firehose(['run']);
    expect((await missing.exited).code).toBe(2);
    expect(missing.stderr()).toContain('--config FILE is required');
    const unknown = firehose(['launch']);
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.stderr()).toContain('unknown command "launch"');
  });
});
