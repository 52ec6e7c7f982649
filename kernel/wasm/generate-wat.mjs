// Build-time generator of the WebAssembly pair kernel (run by build.mjs, assembled with wabt).
// The micro-kernel is fully unrolled over an MR×NR tile, so it is generated rather than hand-written:
// the repetition lives in loops here, and the WAT it prints stays readable (`node -e` it to look).
//
// Math (the 3M method, as zgemm3m): with A = Ar + i·Ai and B = Br + i·Bi = A/d,
//   P1 = Ar·Brᵀ, P2 = Ai·Biᵀ, P3 = (Ar + Ai)·(Br − Bi)ᵀ;  H = (P1 + P2) + i·(P3 − P1 + P2)
// three real products instead of four. Each product runs in its own k-loop ("pass"), so only
// MR·NR accumulators and MR + 1 operands are live at once: 8 + 5 vector registers for 4×2, which fits
// x64's 16 without spills (bigger tiles or one fused loop spilled in V8's TurboFan, measured).
//
// Panel layout: the micro-panels of ../micro-panels.mjs (the packer writes the same module's layout), so
// value pair (row m of group g, k-pair p, plane q) sits at byte
//     g·(Kp/2)·pairChunk(MR)·8 + p·pairChunk(MR)·8 + (q·planeStride(MR) + 2m)·8
// and the micro-kernel streams both panels strictly forwards, 16 bytes at a time.
//
// Export: tile(pA, pB, Kp, kFrom, kTo, i0, i1, j0, j1, kc, pOut, ldo), all i32. Computes rows [i0, i1)
// (multiples of MR) × columns [j0, j1) (multiples of NR) of the sum over k in [kFrom, kTo) (multiples of kc,
// or kTo = Kp) into pOut as interleaved (re, im) f64 with a row stride of ldo complex values, summing k in
// blocks of kc from zero (the first block stores, later ones add); the caller adds such sums over fixed
// chunks of k (kernel/hermitian-pairs-wasm.ts). Micro-tiles wholly
// above the diagonal are skipped (their outputs are left as they were). Within a k block, columns go in
// chunks of nc (BLIS's loop order) so a chunk's B micro-panels (~100 KB) stay in this core's L2 while
// all the tile's rows pass over them; unchunked, a 128-column tile's B is ~400 KB per k block and its
// reuse depends on the L3 that other tenants share (equal speed on a quiet host, measured).
// Neither chunking nor unrolling changes any element's order of summation: every variant is bit-identical.

import { MICRO_PLANES, pairChunk, planeStride } from '../micro-panels.mjs';

/**
 * @param {{ relaxed: boolean, mr: number, nr: number, unroll?: number, nc?: number }} options
 *   unroll: copies of the k-loop body per iteration (default 4); nc: columns per sweep of a tile's rows
 *   (a multiple of nr, default 32).
 */
export function generateWat({ relaxed, mr, nr, unroll = 4, nc = 32 }) {
  if (!(unroll >= 1) || nc % nr !== 0) throw new Error(`generateWat: unroll ${unroll} must be ≥ 1 and nc ${nc} a multiple of nr ${nr}`);
  const chunkA = pairChunk(mr) * 8; // bytes per k-pair of an A micro-panel
  const chunkB = pairChunk(nr) * 8;
  const plane = (group, q, m) => (q * planeStride(group) + 2 * m) * 8; // byte offset of (plane q, row m) in a chunk
  const madd = (a, b, acc) =>
    relaxed
      ? `(f64x2.relaxed_madd (local.get ${a}) (local.get ${b}) (local.get ${acc}))`
      : `(f64x2.add (local.get ${acc}) (f64x2.mul (local.get ${a}) (local.get ${b})))`;
  const acc = (pass, m, n) => `$p${pass}_${m}_${n}`;
  const each = (f) => Array.from({ length: mr }, (_, m) => Array.from({ length: nr }, (_, n) => f(m, n))).flat();

  // One pass: the real MR×NR product of plane q of A with plane q of B over npairs k-pairs. The loop
  // holds UNROLL copies of its body with an exit test after each, so it handles any pair count without
  // a remainder loop; one copy per iteration let TurboFan hoist loads it then had to spill (measured).
  const step = (q) => [
    ...Array.from({ length: mr }, (_, m) => `(local.set $a${m} (v128.load offset=${plane(mr, q, m)} (local.get $qa)))`),
    ...Array.from({ length: nr }, (_, n) => [
      `(local.set $b (v128.load offset=${plane(nr, q, n)} (local.get $qb)))`,
      ...Array.from({ length: mr }, (_, m) => `(local.set ${acc(q, m, n)} ${madd(`$a${m}`, '$b', acc(q, m, n))})`),
    ]).flat(),
    `(local.set $qa (i32.add (local.get $qa) (i32.const ${chunkA})))`,
    `(local.set $qb (i32.add (local.get $qb) (i32.const ${chunkB})))`,
  ];
  const pass = (q) => [
    ...each((m, n) => `(local.set ${acc(q, m, n)} (v128.const i64x2 0 0))`),
    // Both pointers start from an i32 arithmetic result, not a parameter: x64 TurboFan then knows their
    // upper 32 bits are zero and addresses memory without a zero-extending move per load.
    `(local.set $qa (i32.sub (local.get $end) (local.get $lenA)))`,
    `(local.set $qb (i32.sub (local.get $endB) (local.get $lenB)))`,
    `(block $done${q}`,
    `  (br_if $done${q} (i32.ge_u (local.get $qa) (local.get $end)))`,
    `  (loop $k${q}`,
    ...Array.from({ length: unroll }, (_, u) => [
      ...step(q).map((line) => `    ${line}`),
      u < unroll - 1
        ? `    (br_if $done${q} (i32.ge_u (local.get $qa) (local.get $end)))`
        : `    (br_if $k${q} (i32.lt_u (local.get $qa) (local.get $end)))))`,
    ]).flat(),
  ];

  // Combine the passes, sum the two k lanes into one (re, im) pair, store or add to the output.
  const lanesLo = '0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23';
  const lanesHi = '8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31';
  const epilogue = each((m, n) => {
    const [p1, p2, p3] = [0, 1, 2].map((q) => `(local.get ${acc(q, m, n)})`);
    const row = m === 0 ? '(local.get $po)' : `(i32.add (local.get $po) (i32.mul (local.get $ldo16) (i32.const ${m})))`;
    return [
      `(local.set $re (f64x2.add ${p1} ${p2}))`,
      `(local.set $im (f64x2.add (f64x2.sub ${p3} ${p1}) ${p2}))`,
      `(local.set $re (f64x2.add (i8x16.shuffle ${lanesLo} (local.get $re) (local.get $im)) (i8x16.shuffle ${lanesHi} (local.get $re) (local.get $im))))`,
      `(if (local.get $first)`,
      `  (then (v128.store offset=${n * 16} ${row} (local.get $re)))`,
      `  (else (v128.store offset=${n * 16} ${row} (f64x2.add (v128.load offset=${n * 16} ${row}) (local.get $re)))))`,
    ];
  }).flat();

  const locals = [
    ...Array.from({ length: MICRO_PLANES }, (_, q) => q).flatMap((q) => each((m, n) => acc(q, m, n))),
    ...Array.from({ length: mr }, (_, m) => `$a${m}`),
    '$b',
    '$re',
    '$im',
  ];
  const indent = (lines, depth) => lines.map((line) => ' '.repeat(depth) + line).join('\n');

  return `(module
  ;; hpair pair kernel: 3M, ${relaxed ? 'relaxed SIMD (fused multiply-add)' : 'SIMD'}, micro-tile ${mr}×${nr}
  (import "env" "memory" (memory 1 65536 shared))
${compensatedTile()}
  (func $micro (param $pa i32) (param $pb i32) (param $npairs i32) (param $po i32) (param $ldo16 i32) (param $first i32)
    (local $end i32) (local $endB i32) (local $lenA i32) (local $lenB i32) (local $qa i32) (local $qb i32)
    ${locals.map((name) => `(local ${name} v128)`).join(' ')}
    (local.set $lenA (i32.mul (local.get $npairs) (i32.const ${chunkA})))
    (local.set $lenB (i32.mul (local.get $npairs) (i32.const ${chunkB})))
    (local.set $end (i32.add (local.get $pa) (local.get $lenA)))
    (local.set $endB (i32.add (local.get $pb) (local.get $lenB)))
${indent([0, 1, 2].flatMap(pass), 4)}
${indent(epilogue, 4)}
  )
  (func (export "tile") (param $pA i32) (param $pB i32) (param $Kp i32) (param $kFrom i32) (param $kTo i32)
        (param $i0 i32) (param $i1 i32) (param $j0 i32) (param $j1 i32)
        (param $kc i32) (param $pOut i32) (param $ldo i32)
    (local $kb i32) (local $np i32) (local $i i32) (local $j i32) (local $jend i32) (local $jc i32) (local $jcEnd i32)
    (local $gsA i32) (local $gsB i32) (local $ldo16 i32) (local $paRow i32) (local $poRow i32)
    (local.set $gsA (i32.mul (i32.shr_u (local.get $Kp) (i32.const 1)) (i32.const ${chunkA})))
    (local.set $gsB (i32.mul (i32.shr_u (local.get $Kp) (i32.const 1)) (i32.const ${chunkB})))
    (local.set $ldo16 (i32.shl (local.get $ldo) (i32.const 4)))
    (local.set $kb (local.get $kFrom))
    (block $kdone (loop $kloop
      (br_if $kdone (i32.ge_u (local.get $kb) (local.get $kTo)))
      ;; this k block: min(kc, kTo − kb) values = np pairs
      (local.set $np (i32.shr_u (select (local.get $kc) (i32.sub (local.get $kTo) (local.get $kb))
                                 (i32.lt_u (local.get $kc) (i32.sub (local.get $kTo) (local.get $kb)))) (i32.const 1)))
      ;; columns in chunks of ${nc}: one chunk's B micro-panels stay in L2 while every row of the tile passes
      (local.set $jc (local.get $j0))
      (block $cdone (loop $cloop
        (br_if $cdone (i32.ge_u (local.get $jc) (local.get $j1)))
        (local.set $jcEnd (select (local.get $j1) (i32.add (local.get $jc) (i32.const ${nc}))
                            (i32.lt_u (local.get $j1) (i32.add (local.get $jc) (i32.const ${nc})))))
        (local.set $i (local.get $i0))
        (block $idone (loop $iloop
          (br_if $idone (i32.ge_u (local.get $i) (local.get $i1)))
          (local.set $paRow (i32.add (i32.add (local.get $pA)
              (i32.mul (i32.div_u (local.get $i) (i32.const ${mr})) (local.get $gsA)))
              (i32.mul (i32.shr_u (local.get $kb) (i32.const 1)) (i32.const ${chunkA}))))
          (local.set $poRow (i32.add (local.get $pOut) (i32.mul (i32.sub (local.get $i) (local.get $i0)) (local.get $ldo16))))
          ;; only micro-tiles that reach the lower triangle: j < i + MR
          (local.set $jend (select (local.get $jcEnd) (i32.add (local.get $i) (i32.const ${mr}))
                             (i32.lt_u (local.get $jcEnd) (i32.add (local.get $i) (i32.const ${mr})))))
          (local.set $j (local.get $jc))
          (block $jdone (loop $jloop
            (br_if $jdone (i32.ge_u (local.get $j) (local.get $jend)))
            (call $micro
              (local.get $paRow)
              (i32.add (i32.add (local.get $pB)
                  (i32.mul (i32.div_u (local.get $j) (i32.const ${nr})) (local.get $gsB)))
                  (i32.mul (i32.shr_u (local.get $kb) (i32.const 1)) (i32.const ${chunkB})))
              (local.get $np)
              (i32.add (local.get $poRow) (i32.shl (i32.sub (local.get $j) (local.get $j0)) (i32.const 4)))
              (local.get $ldo16)
              (i32.eq (local.get $kb) (local.get $kFrom)))
            (local.set $j (i32.add (local.get $j) (i32.const ${nr})))
            (br $jloop)))
          (local.set $i (i32.add (local.get $i) (i32.const ${mr})))
          (br $iloop)))
        (local.set $jc (i32.add (local.get $jc) (i32.const ${nc})))
        (br $cloop)))
      (local.set $kb (i32.add (local.get $kb) (local.get $kc)))
      (br $kloop)))
  )
)
`;
}

// Export: tile_comp(pP, rows, stride, i0, i1, j0, j1, pOut, ldo), all i32: compensated accuracy over the `pairs`
// panels of kernel/panels.ts (16 planes of rows × stride). For every entry (i, j) of the tile with j ≤ i, Re and Im
// are each a Dot2 sum (Ogita, Rump and Oishi) over 4M products of pairs: the product's high part exactly by
// Dekker's TwoProduct on the packed Veltkamp splits (no fused multiply-add in plain SIMD), its low part and the
// pairs' low parts into the correction, the high parts by TwoSum. The two lanes hold even and odd k and are joined
// at the end (TwoSum of the sums, corrections added), then rounded once: (re, im) into pOut at row stride ldo
// complex values. Only mul, add and sub, the same in both modules and on every engine.
function compensatedTile() {
  const get = (name) => `(local.get $${name})`;
  const op = (name, a, b) => `(f64x2.${name} ${a} ${b})`;
  const load = (base, plane) => `(v128.load ${plane === 0 ? get(base) : `(i32.add ${get(base)} ${get(`q${plane}`)})`})`;
  const side = (prefix, base, first) =>
    ['', 's', 't', 'l'].map((suffix, q) => `(local.set $${prefix}${suffix} ${load(base, first + q)})`);
  // p = a·b exactly as p + e, plus a·bl + al·b
  const product = (a, b) => [
    `(local.set $p ${op('mul', get(a), get(b))})`,
    `(local.set $e ${op('add', op('add', op('add', op('sub', op('mul', get(`${a}s`), get(`${b}s`)), get('p')), op('mul', get(`${a}s`), get(`${b}t`))), op('mul', get(`${a}t`), get(`${b}s`))), op('mul', get(`${a}t`), get(`${b}t`)))})`,
    `(local.set $e ${op('add', get('e'), op('add', op('mul', get(a), get(`${b}l`)), op('mul', get(`${a}l`), get(b))))})`,
  ];
  const negate = [`(local.set $p (f64x2.neg ${get('p')}))`, `(local.set $e (f64x2.neg ${get('e')}))`];
  // s + p by TwoSum; its error and e into c
  const accumulate = (sum, corr) => [
    `(local.set $t ${op('add', get(sum), get('p'))})`,
    `(local.set $z ${op('sub', get('t'), get(sum))})`,
    `(local.set $${corr} ${op('add', get(corr), op('add', op('add', op('sub', get(sum), op('sub', get('t'), get('z'))), op('sub', get('p'), get('z'))), get('e')))})`,
    `(local.set $${sum} ${get('t')})`,
  ];
  // the two lanes of (sum, corr) as one double
  const join = (sum, corr, out) => [
    `(local.set $S (f64.add (f64x2.extract_lane 0 ${get(sum)}) (f64x2.extract_lane 1 ${get(sum)})))`,
    `(local.set $Z (f64.sub ${get('S')} (f64x2.extract_lane 0 ${get(sum)})))`,
    `(local.set $E (f64.add (f64.sub (f64x2.extract_lane 0 ${get(sum)}) (f64.sub ${get('S')} ${get('Z')})) (f64.sub (f64x2.extract_lane 1 ${get(sum)}) ${get('Z')})))`,
    `(local.set $${out} (f64.add ${get('S')} (f64.add (f64.add (f64x2.extract_lane 0 ${get(corr)}) (f64x2.extract_lane 1 ${get(corr)})) ${get('E')})))`,
  ];
  const body = [
    ...side('x', 'pa', 0), // ar
    ...side('y', 'pa', 4), // ai
    ...side('u', 'pj', 8), // br
    ...side('w', 'pj', 12), // bi
    ...product('x', 'u'), ...accumulate('sr', 'cr'), // Re += ar·br
    ...product('y', 'w'), ...accumulate('sr', 'cr'), // Re += ai·bi
    ...product('y', 'u'), ...accumulate('si', 'ci'), // Im += ai·br
    ...product('x', 'w'), ...negate, ...accumulate('si', 'ci'), // Im −= ar·bi
    '(local.set $pa (i32.add (local.get $pa) (i32.const 16)))',
    '(local.set $pj (i32.add (local.get $pj) (i32.const 16)))',
  ];
  const vectors = ['sr', 'cr', 'si', 'ci', 'p', 'e', 't', 'z', ...['x', 'y', 'u', 'w'].flatMap((v) => ['', 's', 't', 'l'].map((s) => v + s))];
  const planes = Array.from({ length: 15 }, (_, q) => `q${q + 1}`);
  return `  (func (export "tile_comp") (param $pP i32) (param $rows i32) (param $stride i32) (param $i0 i32) (param $i1 i32)
        (param $j0 i32) (param $j1 i32) (param $pOut i32) (param $ldo i32)
    (local $i i32) (local $j i32) (local $jend i32) (local $pa i32) (local $pj i32) (local $end i32) (local $row i32) (local $o i32)
    ${planes.map((q) => `(local $${q} i32)`).join(' ')}
    ${vectors.map((v) => `(local $${v} v128)`).join(' ')}
    (local $S f64) (local $Z f64) (local $E f64) (local $re f64) (local $im f64)
    (local.set $row (i32.shl (local.get $stride) (i32.const 3)))
    (local.set $q1 (i32.mul (local.get $rows) (local.get $row)))
${planes.slice(1).map((q, x) => `    (local.set $${q} (i32.add (local.get $q${x + 1}) (local.get $q1)))`).join('\n')}
    (local.set $i (local.get $i0))
    (block $idone (loop $iloop
      (br_if $idone (i32.ge_u (local.get $i) (local.get $i1)))
      (local.set $jend (select (local.get $j1) (i32.add (local.get $i) (i32.const 1))
                         (i32.lt_u (local.get $j1) (i32.add (local.get $i) (i32.const 1)))))
      (local.set $j (local.get $j0))
      (block $jdone (loop $jloop
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $jend)))
        (local.set $sr (v128.const i64x2 0 0)) (local.set $cr (v128.const i64x2 0 0))
        (local.set $si (v128.const i64x2 0 0)) (local.set $ci (v128.const i64x2 0 0))
        (local.set $pa (i32.add (local.get $pP) (i32.mul (local.get $i) (local.get $row))))
        (local.set $pj (i32.add (local.get $pP) (i32.mul (local.get $j) (local.get $row))))
        (local.set $end (i32.add (local.get $pa) (local.get $row)))
        (block $kdone (loop $kloop
          (br_if $kdone (i32.ge_u (local.get $pa) (local.get $end)))
${body.map((line) => `          ${line}`).join('\n')}
          (br $kloop)))
${join('sr', 'cr', 're').map((line) => `        ${line}`).join('\n')}
${join('si', 'ci', 'im').map((line) => `        ${line}`).join('\n')}
        (local.set $o (i32.add (local.get $pOut)
            (i32.shl (i32.add (i32.mul (i32.sub (local.get $i) (local.get $i0)) (local.get $ldo)) (i32.sub (local.get $j) (local.get $j0))) (i32.const 4))))
        (f64.store (local.get $o) (local.get $re))
        (f64.store offset=8 (local.get $o) (local.get $im))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $jloop)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $iloop)))
  )`;
}
