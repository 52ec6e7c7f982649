import type { Kernel, KernelContext } from '../shared/kernel-contract.js';
import { Slot, isCancelled } from '../shared/control-block.js';
import { locateTile, newTile, tileCount } from '../shared/index-space.js';
import type { StepSpec } from '../shared/protocol.js';

/**
 * Runs one worker's share of a step: its strided slice (tiles worker, worker + workers, …) or, with
 * dynamic scheduling, whatever tiles it claims first from the shared counter. Either way each tile is
 * computed whole by one thread, so the split never changes a result. The cancel flag is read before
 * every tile: cancellation latency is one tile.
 */
export function runTiles(kernel: Kernel, step: StepSpec, worker: number, workers: number): void {
  const context: KernelContext = { buffers: step.buffers, params: step.params, worker, workers };
  const { control, space } = step;
  const total = tileCount(space);
  const tile = newTile();
  kernel.setup?.(context);
  if (step.schedule === 'dynamic') {
    for (;;) {
      if (isCancelled(control)) return;
      const index = Atomics.add(control, Slot.NEXT_TILE, 1);
      if (index >= total) return;
      kernel.tile(locateTile(space, index, tile), context);
      Atomics.add(control, Slot.PROGRESS, 1);
    }
  }
  for (let index = worker; index < total; index += workers) {
    if (isCancelled(control)) return;
    kernel.tile(locateTile(space, index, tile), context);
    Atomics.add(control, Slot.PROGRESS, 1);
  }
}
