import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { firehose } from './helpers/cli.js';
import { waitFor } from './helpers/harness.js';

/** Whether a redis-server listening on this port is still running. */
function redisRunning(port: string): boolean {
  try {
    return execFileSync('pgrep', ['-f', `redis-server 127.0.0.1:${port}`], { encoding: 'utf8' }).trim().length > 0;
  } catch {
    return false;
  }
}

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

  it('Ctrl-C in a terminal (SIGINT to the whole process group) stops it with everything checkpointed, and leaves no redis-server behind', async () => {
    const dev = firehose(['dev', '--shards', '2', '--rate', '2000'], {}, { ownProcessGroup: true });
    await waitFor(() => /^delivered /m.test(dev.stdout()), 60_000, 'an object delivered');
    const port = /redis +redis:\/\/127\.0\.0\.1:(\d+)/.exec(dev.stdout())![1]!;
    expect(redisRunning(port)).toBe(true);
    process.kill(-dev.child.pid!, 'SIGINT');
    const { code } = await dev.exited;
    expect(dev.stdout()).toMatch(/; all checkpointed/);
    expect(dev.stdout()).not.toMatch(/NOT all checkpointed/);
    expect(dev.stderr()).not.toMatch(/checkpoint write failed/);
    expect(code).toBe(0);
    await waitFor(() => !redisRunning(port), 10_000, 'redis-server stopped');
  });

  it('a killed dev mode (SIGKILL) leaves no redis-server behind', async () => {
    const dev = firehose(['dev', '--shards', '1', '--rate', '100'], {}, { ownProcessGroup: true });
    await waitFor(() => /redis +redis:\/\/127\.0\.0\.1:\d+/.test(dev.stdout()), 30_000, 'the peers started');
    const port = /redis +redis:\/\/127\.0\.0\.1:(\d+)/.exec(dev.stdout())![1]!;
    await waitFor(() => redisRunning(port), 10_000, 'redis-server running');
    dev.child.kill('SIGKILL');
    await dev.exited;
    await waitFor(() => !redisRunning(port), 10_000, 'redis-server gone with it');
  });
});
