import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { localAwsEnvironment } from '../../src/dev/peers.js';

export const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

export interface CliProcess {
  readonly child: ChildProcess;
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `firehose …` as its own process, as a user or an init system would. */
export function firehose(args: string[], env: Record<string, string> = {}, options: { ownProcessGroup?: boolean } = {}): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...localAwsEnvironment(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // As a terminal runs it: the leader of its own process group, which Ctrl-C signals whole.
    detached: options.ownProcessGroup ?? false,
  });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    // 'close', not 'exit': the process may exit before its last output has been read.
    child.once('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}
