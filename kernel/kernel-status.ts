import type { KernelVariant } from './kernel-names.js';
import { VARIANTS, variantNamed } from './variants.js';

/** Whether this runtime and CPU can run a variant. */
export function kernelSupported(name: KernelVariant): boolean {
  return variantNamed(name).support().ok;
}

/** Every variant, fastest first, with whether it runs here and, if not, why (one line). */
export function kernelStatus(): ReadonlyArray<{ readonly kernel: KernelVariant; readonly supported: boolean; readonly reason?: string }> {
  return VARIANTS.map((variant) => {
    const support = variant.support();
    return support.ok ? { kernel: variant.name, supported: true } : { kernel: variant.name, supported: false, reason: support.reason };
  });
}
