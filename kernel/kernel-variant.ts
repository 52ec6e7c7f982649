import { mr, nr, relaxed, simd } from 'virtual:wasm-kernels';
import { HpairError } from '../shared/errors.js';

/** Which pair kernel a pool runs. */
export type KernelVariant = 'js' | 'wasm-simd' | 'wasm-relaxed-simd';
/** What a caller may ask for: a variant, or the fastest this runtime supports. */
export type KernelChoice = 'auto' | KernelVariant;

/** Micro-tile shape the WebAssembly kernels were generated with (see kernel/wasm/generate-wat.mjs). */
export const WASM_MICRO_TILE = { mr, nr } as const;

/** The assembled kernels' bytes, decoded once. */
export const kernelBytes: Record<Exclude<KernelVariant, 'js'>, Uint8Array> = {
  'wasm-simd': Uint8Array.from(Buffer.from(simd, 'base64')),
  'wasm-relaxed-simd': Uint8Array.from(Buffer.from(relaxed, 'base64')),
};

/**
 * Whether this runtime can run a variant. Validating the kernel's own bytes is the exact test: relaxed
 * SIMD is on by default from Node 22 (V8 11.4) and behind --experimental-wasm-relaxed-simd on Node 20.
 */
export function kernelSupported(variant: KernelVariant): boolean {
  if (variant === 'js') return true;
  try {
    return WebAssembly.validate(kernelBytes[variant]) && sharedMemorySupported();
  } catch {
    return false;
  }
}

function sharedMemorySupported(): boolean {
  try {
    return new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true }).buffer instanceof SharedArrayBuffer;
  } catch {
    return false;
  }
}

export function resolveKernel(choice: KernelChoice): KernelVariant {
  if (choice === 'auto') {
    return (['wasm-relaxed-simd', 'wasm-simd'] as const).find(kernelSupported) ?? 'js';
  }
  if (choice !== 'js' && choice !== 'wasm-simd' && choice !== 'wasm-relaxed-simd') {
    throw new HpairError('INVALID_ARGUMENT', `kernel must be 'auto', 'js', 'wasm-simd' or 'wasm-relaxed-simd', got ${String(choice)}`);
  }
  if (!kernelSupported(choice)) {
    const hint = choice === 'wasm-relaxed-simd' ? ' (Node 20 needs --experimental-wasm-relaxed-simd; Node ≥ 22 has it)' : '';
    throw new HpairError('INVALID_ARGUMENT', `kernel '${choice}' is not supported by this runtime${hint}`);
  }
  return choice;
}
