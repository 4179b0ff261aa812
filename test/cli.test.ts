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

  it('--help, -h and --version answer, globally and per command, with exit 0', async () => {
    for (const args of [['--help'], ['-h'], ['run', '--help'], ['validate', '-h'], ['dev', '--help'], ['dlq', '--help'], ['dlq', 'redrive', '--help']]) {
      const run = firehose(args);
      expect((await run.exited).code, args.join(' ')).toBe(0);
      expect(run.stdout(), args.join(' ')).toMatch(/^(Usage|firehose —)/);
    }
    const version = firehose(['--version']);
    expect((await version.exited).code).toBe(0);
    expect(version.stdout()).toMatch(/^firehose \d+\.\d+\.\d+\n$/);
    const bare = firehose([]);
    expect((await bare.exited).code).toBe(2);
    expect(bare.stderr()).toContain('Usage: firehose <command>');
  });

  it('refuses an option another command takes, naming it', async () => {
    const run = firehose(['validate', '--config', 'config/example.yaml', '--shards', '9']);
    expect((await run.exited).code).toBe(2);
    expect(run.stderr()).toContain("validate: Unknown option '--shards'");
  });

  it('says in one line of its own, not the SDK\'s eight, that Node 22 is for production', async () => {
    const config = await configFile(`
redis: { url: "redis://127.0.0.1:1" }
deliveryStreams:
  - deliveryStreamName: quiet
    kinesisStreamSource: { streamName: quiet, endpoint: "http://127.0.0.1:1" }
    s3Destination: { bucket: quiet, endpoint: "http://127.0.0.1:1" }
`);
    const run = firehose(['run', '--config', config], { AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: '' });
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    run.child.kill('SIGTERM');
    await run.exited;
    expect(run.stderr()).not.toContain('NodeVersionSupportWarning');
    if (Number(process.versions.node.split('.')[0]) < 22) expect(run.stderr().match(/Node 22/g)).toHaveLength(1);
  });

  it('dlq commands say when Redis cannot be reached, within seconds, instead of hanging', async () => {
    const config = await configFile(`
redis: { url: "redis://:hunter2@127.0.0.1:1" }
deliveryStreams:
  - deliveryStreamName: away
    kinesisStreamSource: { streamName: away }
    s3Destination: { bucket: away }
`);
    const started = Date.now();
    const run = firehose(['dlq', 'list', '--config', config]);
    expect((await run.exited).code).toBe(2);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(run.stdout()).toContain('cannot reach Redis at redis://127.0.0.1:1 within 5 s');
    expect(run.stdout() + run.stderr()).not.toContain('hunter2');
    const unknown = firehose(['dlq', 'frobnicate', '--config', config]);
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.stdout()).toContain('unknown dlq action "frobnicate"');
  });
});
