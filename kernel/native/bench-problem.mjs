// The seeded problem the native single-thread benches time (bench-tile.mjs, bench/orders/tile-cpu.mjs): the same
// inputs in every run and every build, so their times compare.
export function benchProblem(N, M) {
  let s = 12345;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  const expp = new Float64Array(new SharedArrayBuffer(16 * N * M));
  for (let i = 0; i < expp.length; i++) expp[i] = next();
  const distance = new Float64Array(new SharedArrayBuffer(8 * M));
  for (let m = 0; m < M; m++) distance[m] = 1 + next() / 2;
  return { expp, distance };
}
