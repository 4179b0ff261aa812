import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

interface ProxyStats {
  getRecordsAt: number[];
  injected: { ProvisionedThroughputExceededException: number; ExpiredIteratorException: number; rewritten: number };
}

/** Starts kinesis-proxy.mjs in its own process; see there. */
export async function startKinesisProxy(target: string, faults: { throttleEvery: number; expireEvery: number; rewrite?: boolean }) {
  const script = fileURLToPath(new URL('./kinesis-proxy.mjs', import.meta.url));
  const child = spawn(process.execPath, [script, target, String(faults.throttleEvery), String(faults.expireEvery), faults.rewrite ? '1' : '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once('exit', (code) => reject(new Error(`kinesis proxy exited (${code})`)));
  });
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    async stats(): Promise<ProxyStats & { busiestSecond: number }> {
      const stats = (await (await fetch(`${endpoint}/__stats`)).json()) as ProxyStats;
      const at = stats.getRecordsAt;
      let busiest = 0;
      for (let i = 0, j = 0; i < at.length; i++) {
        while (at[i]! - at[j]! >= 1000) j++;
        busiest = Math.max(busiest, i - j + 1);
      }
      return { ...stats, busiestSecond: busiest };
    },
    async stop() {
      if (child.exitCode !== null) return;
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}
