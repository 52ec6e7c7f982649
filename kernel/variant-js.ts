import { packStep } from './hermitian-pack.js';
import { builtinRef } from './kernel-names.js';
import { panelLength, planarLayout } from './panels.js';
import type { HermitianVariant } from './variant.js';

/**
 * Plain JavaScript: the fallback that runs everywhere. Planar panels for the whole job (four planes AR, AI,
 * BR, BI) in the engine's shared scratch, 64 × 64 tiles, k read by 256 columns at a time so a tile's rows stay in
 * L2 (the summation order's blocks are shorter: hermitian-pairs-js.ts JS_BLOCK).
 */
const TILE = 64;
const KC = 256;

export const javascriptVariant: HermitianVariant = {
  name: 'js',
  support: () => ({ ok: true }),
  tile: TILE,
  tileEdges: () => [TILE],
  // Its register block is 2 × 2 pairs.
  tileStep: 2,
  anyOrigin: false,
  compensated: false,
  scratchBytes: (N, M) => ({ wasm: 0, shared: 8 * panelLength(planarLayout(N, M)), native: 0 }),
  steps(problem, scratch) {
    const layout = planarLayout(problem.N, problem.M);
    const panels = scratch.shared(panelLength(layout));
    return [
      packStep(problem, panels, layout),
      {
        kernel: builtinRef('hermitian/pairs-js'),
        space: problem.pairSpace,
        buffers: { panels, h: problem.h },
        params: { layout, tile: TILE, kc: KC, window: problem.window },
      },
    ];
  },
};
