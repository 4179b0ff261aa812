import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The CLI suites run the real binary (dist/src/cli.js): build it once before any suite starts. */
export default function setup(): void {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}
