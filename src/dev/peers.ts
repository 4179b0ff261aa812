import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Local peers for the dev mode, the tests and the benchmark: a real redis-server child process,
 * kinesalite and s3rver in this process. Each starts on a free port on 127.0.0.1 and stops cleanly.
 * kinesalite and s3rver are dev dependencies: a production install (npm ci --omit=dev) lacks them
 * and only `firehose dev` needs them.
 */

export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;

/**
 * The environment a `firehose` process needs against the local peers: s3rver's key pair (the
 * service reads credentials through the SDK's default chain, as in production), a region, and the
 * SDK's Node-version notice silenced.
 */
export function localAwsEnvironment(): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_REGION: 'us-east-1',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
}

export class MissingPeerError extends Error {}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  readonly url: string;
  readonly port: number;
  /** Stops it (SIGTERM; with AOF the data is kept). */
  stop(): Promise<void>;
  /** Stops it, waits, and starts it again on the same port and directory. */
  restart(downForMs?: number): Promise<void>;
}

export async function startRedis(options: { appendOnly?: boolean } = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'firehose-redis-'));
  let port = await freePort();
  let child: ChildProcess | undefined;

  const launch = async () => {
    for (let attempt = 1; ; attempt++) {
      try {
        child = await spawnRedis(port, dir, options.appendOnly ?? false);
        return;
      } catch (err) {
        if (err instanceof MissingPeerError || attempt >= 5) throw err;
        port = await freePort(); // the port was taken between probing and binding
      }
    }
  };
  await launch();

  const stopChild = async () => {
    const running = child;
    child = undefined;
    if (!running || running.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve());
      running.kill('SIGTERM');
    });
  };

  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    async stop() {
      await stopChild();
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    },
    async restart(downForMs = 0) {
      await stopChild();
      await new Promise((resolve) => setTimeout(resolve, downForMs));
      child = await spawnRedis(port, dir, options.appendOnly ?? false);
    },
  };
}

/**
 * redis-server under a small shell, in a process group of its own: a terminal's Ctrl-C reaches the
 * whole foreground group, and Redis (which handles SIGINT itself, so ignoring it is not enough)
 * must outlive it until the final checkpoints are written. The shell stops Redis when this process
 * is gone, even if it was killed, so nothing is left behind; SIGTERM to the shell stops Redis (with
 * AOF the data is kept) and waits for it.
 */
const REDIS_UNDER_WATCH = `
trap '' INT
redis-server "$@" &
redis=$!
trap 'kill -TERM $redis 2>/dev/null; wait $redis; exit 0' TERM
while kill -0 "$OWNER" 2>/dev/null && kill -0 $redis 2>/dev/null; do sleep 1 & wait $!; done
kill -TERM $redis 2>/dev/null
wait $redis
`;

function spawnRedis(port: number, dir: string, appendOnly: boolean): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--daemonize', 'no', '--dir', dir];
    args.push('--appendonly', appendOnly ? 'yes' : 'no');
    const child = spawn('sh', ['-c', REDIS_UNDER_WATCH, 'redis-under-watch', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, OWNER: String(process.pid) },
      detached: true,
    });
    let output = '';
    const onData = (data: Buffer) => {
      output += data.toString();
      if (output.includes('Ready to accept connections')) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        child.stderr!.resume();
        resolve(child);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (/redis-server: (not found|No such file)/.test(output) || code === 127) {
        reject(
          new MissingPeerError(
            'redis-server is not installed. Install it with: sudo apt-get install -y redis-server ' +
              '(Debian/Ubuntu) or brew install redis (macOS), then run this again.',
          ),
        );
      } else reject(new Error(`redis-server exited (${code}) before it was ready:\n${output.slice(-2000)}`));
    });
  });
}

export interface KinesisServer {
  readonly endpoint: string;
  stop(): Promise<void>;
}

export async function startKinesalite(): Promise<KinesisServer> {
  const { default: kinesalite } = (await importDevDependency('kinesalite')) as {
    default: (options: Record<string, unknown>) => Server;
  };
  const server = kinesalite({ createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface S3Server {
  readonly endpoint: string;
  readonly directory: string;
  /**
   * Stops it and removes its directory, objects and all, unless told to keep it: for a restart on
   * the same directory, or objects a user is shown. (Kept always, a benchmark run left 0.5 GB.)
   */
  stop(options?: { keepDirectory?: boolean }): Promise<void>;
}

export async function startS3rver(buckets: string[], options: { port?: number; directory?: string } = {}): Promise<S3Server> {
  const { default: S3rver } = (await importDevDependency('s3rver')) as {
    default: new (options: Record<string, unknown>) => { run(): Promise<AddressInfo>; close(): Promise<void> };
  };
  const directory = options.directory ?? (await mkdtemp(join(tmpdir(), 'firehose-s3-')));
  const server = new S3rver({
    port: options.port ?? 0,
    address: '127.0.0.1',
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const address = await server.run();
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    directory,
    async stop(stopOptions = {}) {
      await server.close();
      if (!stopOptions.keepDirectory) await rm(directory, { recursive: true, force: true });
    },
  };
}

async function importDevDependency(name: string): Promise<unknown> {
  try {
    return await import(name);
  } catch (err) {
    throw new MissingPeerError(
      `${name} is not installed (it is a dev dependency used by the dev mode and tests): run npm ci. (${(err as Error).message})`,
    );
  }
}
