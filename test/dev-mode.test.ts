import { describe, expect, it } from 'vitest';
import { firehose } from './helpers/cli.js';

describe('npm start (firehose dev)', () => {
  it('starts local Kinesis, S3 and Redis, shows objects being delivered, and stops cleanly', async () => {
    const dev = firehose(['dev', '--shards', '3', '--rate', '3000', '--max-objects', '2']);
    const { code } = await dev.exited;
    expect(dev.stderr()).not.toMatch(/"level":"error"/);
    expect(code).toBe(0);
    const delivered = dev.stdout().match(/^delivered s3:\/\/dev-archive\/demo\/\d{4}\/\d{2}\/\d{2}\/\d{2}\/demo-1-\S+\.gz {2}records=\d+/gm);
    expect(delivered?.length ?? 0).toBeGreaterThanOrEqual(2);
    // Every record produced was read, and every record read was delivered and checkpointed.
    expect(dev.stdout()).toMatch(/produced (\d+) records; read \1; delivered \1 in \d+ objects; all checkpointed$/m);
  });
});
