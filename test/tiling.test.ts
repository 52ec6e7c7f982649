// How the whole H's triangle is cut for a pool's workers (kernel/hermitian-tiling.ts): every cut covers each
// entry of the lower triangle exactly once, keeps the variant's limits, and spreads the work over every worker;
// a tall job balanced this way aborts like any other and leaves the pool computing the same bits.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, isHpairError, kernelSupported } from 'hpair';
import { locateTile, newTile, tileCount, type IndexSpace } from '../shared/index-space.js';
import { PACK_WEIGHT, cost, planTriangle } from '../kernel/hermitian-tiling.js';
import { variantNamed } from '../kernel/variants.js';
import { assertBitIdentical, randomProblem } from './helpers/support.js';

const test = suite('tiling');

function tilesOf(space: IndexSpace): Array<{ i0: number; i1: number; j0: number; j1: number }> {
  return Array.from({ length: tileCount(space) }, (_, index) => ({ ...locateTile(space, index, newTile()) }));
}

/** The lower triangle's entries (j ≤ i) each tile holds, counted per entry. */
function coverage(n: number, space: IndexSpace): Uint8Array {
  const seen = new Uint8Array(n * n);
  for (const { i0, i1, j0, j1 } of tilesOf(space)) {
    for (let i = i0; i < i1; i++) for (let j = j0; j < Math.min(j1, i + 1); j++) seen[i * n + j]++;
  }
  return seen;
}

// Each variant's own rules: its tile edge and cut step (native: rows of a micro-tile; wasm: the micro-tile grid).
const rules = [
  { what: 'native-avx512-like', tile: 240, step: 12 },
  { what: 'native-avx2-like', tile: 240, step: 6 },
  { what: 'wasm-like', tile: 128, step: 4 },
  { what: 'js-like', tile: 64, step: 2 },
  { what: 'odd', tile: 7, step: 3 },
];

test('every cut covers each lower-triangle entry exactly once, within the tile edge, on the step grid', () => {
  for (const { what, tile, step } of rules) {
    for (const n of [0, 1, 2, 3, 11, 12, 13, 47, 60, 100, 127, 128, 129, 239, 240, 241, 255, 300, 481, 1000]) {
      for (const threads of [1, 2, 3, 4, 5, 8, 64]) {
        for (const schedule of ['dynamic', 'strided'] as const) {
          const { space, tiles } = planTriangle(n, { tile, step }, threads, schedule);
          const where = `${what} n = ${n}, ${threads} threads ${schedule} (${space.kind})`;
          assert.is(tiles, tileCount(space), `${where}: tile count`);
          const seen = coverage(n, space);
          for (let i = 0; i < n; i++) {
            for (let j = 0; j <= i; j++) if (seen[i * n + j] !== 1) assert.unreachable(`${where}: entry (${i}, ${j}) covered ${seen[i * n + j]} times`);
          }
          for (const t of tilesOf(space)) {
            assert.ok(t.i1 - t.i0 <= tile && t.j1 - t.j0 <= tile, `${where}: tile ${JSON.stringify(t)} exceeds ${tile}`);
            assert.ok(t.i0 >= 0 && t.j0 >= 0 && t.i1 <= n && t.j1 <= n && t.i0 < t.i1 && t.j0 < t.j1, `${where}: tile ${JSON.stringify(t)} out of range`);
            if (space.kind === 'list') {
              for (const edge of [t.i0, t.i1, t.j0, t.j1]) assert.ok(edge % step === 0 || edge === n, `${where}: cut ${edge} off the step ${step}`);
            }
          }
          if (threads === 1) assert.is(space.kind, 'triangle', `${where}: one thread keeps the uniform grid`);
        }
      }
    }
  }
});

test('a tile\'s cost is its lower-triangle entries, counted one by one, plus its packed rows and columns', () => {
  // Tiles on, across, above and below the diagonal, and rows entirely below or above the tile's columns.
  for (let i0 = 0; i0 < 40; i0 += 3) {
    for (let i1 = i0 + 1; i1 < 46; i1 += 2) {
      for (let j0 = 0; j0 < 46; j0 += 3) {
        for (let j1 = j0 + 1; j1 < 48; j1 += 2) {
          const top = Math.max(i0, j0);
          let entries = 0;
          for (let i = top; i < i1; i++) entries += Math.max(0, Math.min(j1, i + 1) - j0);
          const expected = entries === 0 ? 0 : entries + PACK_WEIGHT * (i1 - top + Math.min(j1, i1) - j0);
          if (cost(i0, i1, j0, j1) !== expected) assert.unreachable(`tile [${i0}, ${i1}) × [${j0}, ${j1}): cost ${cost(i0, i1, j0, j1)}, expected ${expected}`);
        }
      }
    }
  }
});

test('every worker gets work once the triangle holds two micro-tiles per worker; big jobs keep the uniform grid', () => {
  // Micro-tiles of the lower triangle on an mr × nr grid (mr = step).
  const microTiles = (n: number, mr: number, nr: number): number => {
    let count = 0;
    for (let i0 = 0; i0 < n; i0 += mr) count += Math.ceil(Math.min(n, i0 + mr) / nr);
    return count;
  };
  for (const [tile, mr, nr] of [[240, 12, 16], [240, 6, 8], [128, 4, 4]]) {
    for (let n = 1; n <= 520; n += n < 64 ? 1 : 7) {
      for (const threads of [2, 3, 4]) {
        if (microTiles(n, mr, nr) < 2 * threads) continue;
        for (const schedule of ['dynamic', 'strided'] as const) {
          const { tiles } = planTriangle(n, { tile, step: mr }, threads, schedule);
          assert.ok(tiles >= threads, `n = ${n}, tile ${tile}, step ${mr}, ${threads} threads ${schedule}: ${tiles} tiles`);
        }
      }
    }
  }
  // The tall job of the bench: 255 rows under a 240 edge used to be one 240-row triangle with nearly all the
  // work. Dealt in list order to whichever worker has the fewest entries so far, no worker gets much more than
  // its share (packing, which the cut also weighs, makes entries alone a little uneven).
  for (const threads of [2, 3, 4]) {
    const tall = planTriangle(255, { tile: 240, step: 12 }, threads, 'dynamic');
    assert.is(tall.space.kind, 'list');
    const work = tilesOf(tall.space).map(({ i0, i1, j0, j1 }) => {
      let entries = 0;
      for (let i = Math.max(i0, j0); i < i1; i++) entries += Math.max(0, Math.min(j1, i + 1) - j0);
      return entries;
    });
    const busy = new Array<number>(threads).fill(0);
    for (const entries of work) busy[busy.indexOf(Math.min(...busy))] += entries;
    const share = (255 * 256) / 2 / threads;
    assert.ok(Math.max(...busy) <= 1.3 * share, `${threads} threads: workers get ${busy.join(', ')} entries of ${work.join(', ')}`);
  }
  // A square job's grid already has many tiles per worker: it is kept as it is.
  assert.equal(planTriangle(4095, { tile: 240, step: 12 }, 2, 'dynamic').space, { kind: 'triangle', n: 4095, tile: 240 });
});

test('the pool cuts with its variant\'s own tile edge and step', () => {
  for (const name of ['native-avx512', 'native-avx2', 'wasm-simd', 'js'] as const) {
    if (!kernelSupported(name)) continue;
    const variant = variantNamed(name);
    assert.ok(Number.isInteger(variant.tileStep) && variant.tileStep >= 1 && variant.tile % variant.tileStep === 0, `${name}: step ${variant.tileStep}, tile ${variant.tile}`);
  }
});

test('a tall job aborted mid-job rejects with ABORTED, and the pool then computes the same bits as a fresh one', async () => {
  // Compensated accuracy makes the job long enough to abort after its first tile on any kernel here.
  const { expp, distance } = randomProblem(256, 20_000, 11);
  // Four workers: the tall triangle is cut into many tiles, so an abort after the first leaves most unrun.
  const pool = createPool({ workers: 4, inlineFlops: 0, accuracy: 'compensated' });
  const fresh = createPool({ workers: 1, inlineFlops: 0 });
  try {
    const controller = new AbortController();
    let tilesDone = 0;
    let totalTiles = 0;
    const running = pool.hermitian(expp, distance, {
      signal: controller.signal,
      onProgress: (done, total) => {
        tilesDone = done;
        totalTiles = total;
        if (done > 0) controller.abort(new Error('enough'));
      },
    });
    const error = await running.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    assert.ok(isHpairError(error) && error.code === 'ABORTED', `expected ABORTED, got ${String(error)}`);
    assert.ok(tilesDone < totalTiles, `the job ran to its end (${tilesDone} of ${totalTiles} tiles) before the abort`);
    const small = randomProblem(61, 2 * 12288 + 3, 12);
    const after = await pool.hermitian(small.expp, small.distance, { accuracy: 'default' });
    assertBitIdentical(after.data, (await fresh.hermitian(small.expp, small.distance)).data, 'after the abort');
  } finally {
    await Promise.all([pool.close(), fresh.close()]);
  }
});

test.run();
