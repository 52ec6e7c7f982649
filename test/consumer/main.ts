// A TypeScript user of hpair as published: strict, Node types only (no DOM lib), and library .d.ts files
// checked (skipLibCheck: false). types.test.ts compiles this against dist/types.
import {
  HpairError,
  createComplexMatrix,
  createPool,
  defineKernel,
  hermitian,
  type ComplexMatrix,
  type HpairErrorCode,
  type KernelVariant,
  type PoolOptions,
  type RunSpec,
} from 'hpair';

const options: PoolOptions = { workers: 2, kernel: 'auto', schedule: 'dynamic', maxQueue: 4 };
const pool = createPool(options);
const variant: KernelVariant = pool.kernel;
const h: ComplexMatrix = await pool.hermitian(createComplexMatrix(3, 2), new Float64Array(2).fill(1), { timeoutMs: 1000 });
export const kernel = defineKernel<{ out: Float64Array }, { n: number }>({
  tile(tile, { buffers: { out }, params: { n } }) {
    out[tile.i0] = n;
  },
});
const spec: RunSpec<{ out: Float64Array }> = { module: import.meta.url, export: 'kernel', space: { kind: 'range', n: 4 }, buffers: { out: new Float64Array(new SharedArrayBuffer(32)) }, params: { n: 4 } };
const { out } = await pool.run(spec);
const code: HpairErrorCode | undefined = new HpairError('ABORTED', 'x').code;
console.log(variant, h.rows, out[0], code, (await hermitian(createComplexMatrix(2, 2), new Float64Array(2).fill(1))).rows);
await pool.close();
