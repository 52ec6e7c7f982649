// Run as a child process by lifecycle.test: a pool that is never closed must not keep the process alive
// once its job is done.
import { createPool, demoProblem } from 'hpair';

const pool = createPool({ workers: 2, inlineFlops: 0 });
const { expp, distance } = demoProblem(64, 32);
const h = await pool.hermitian(expp, distance);
process.stdout.write(`done ${h.rows}\n`);
