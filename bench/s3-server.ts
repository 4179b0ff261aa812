/** s3rver in a process of its own, for the benchmark: prints its endpoint, stops on SIGTERM. */
import { startS3rver } from '../src/dev/peers.js';

const s3 = await startS3rver(process.argv.slice(2));
process.stdout.write(`${s3.endpoint}\n`);
process.on('SIGTERM', () => void s3.stop().then(() => process.exit(0)));
