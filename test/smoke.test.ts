import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, hermitianReference, createComplexMatrix } from 'hpair';

test('pool matches reference', async () => {
  const N = 70, M = 33;
  const expp = createComplexMatrix(N, M);
  for (let i = 0; i < expp.data.length; i++) expp.data[i] = Math.sin(i * 1.7) * 3;
  const d = new Float64Array(M).map((_, i) => 0.5 + i);
  const pool = createPool({ workers: 2, inlineFlops: 0 });
  const h = await pool.hermitian(expp, d);
  const r = hermitianReference(expp, d);
  let err = 0, max = 0;
  for (let i = 0; i < h.data.length; i++) { err = Math.max(err, Math.abs(h.data[i] - r.data[i])); max = Math.max(max, Math.abs(r.data[i])); }
  console.log(err / max);
  assert.ok(err / max < 1e-12);
  await pool.close();
});
test.run();
