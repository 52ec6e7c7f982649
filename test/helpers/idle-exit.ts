// Run as a child process by lifecycle.test: a job that nobody awaits keeps the process alive until it is
// done, and a pool that is never closed does not keep it alive afterwards.
import { createPool, demoProblem } from 'hpair';

const pool = createPool({ workers: 2, inlineFlops: 0 });
const first = demoProblem(64, 32);
const h = await pool.hermitian(first.expp, first.distance);
process.stdout.write(`done ${h.rows}\n`);
const second = demoProblem(700, 700);
void pool.hermitian(second.expp, second.distance).then((h2) => process.stdout.write(`unawaited done ${h2.rows}\n`));
