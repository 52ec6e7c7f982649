import type { KernelRef } from '../shared/protocol.js';
import { NATIVE_PATHS } from './native-paths.generated.js';

/**
 * The native paths, one per line of kernel/native/src/paths.h and in its order: generated from that file
 * (kernel/native/paths.mjs), so a path is registered in C alone. Everything else in TypeScript that names a native
 * path derives from this list.
 */
export { NATIVE_PATHS };
/** One native path of the addon (`info().paths`). */
export type NativePathName = (typeof NATIVE_PATHS)[number];
/** Which pair kernel runs an H job. */
export type KernelVariant = `native-${NativePathName}` | 'wasm-relaxed-simd' | 'wasm-simd' | 'js';
/** Every kernel variant: the native paths in paths.h's order, then WebAssembly and JavaScript. */
export const KERNEL_VARIANTS: readonly KernelVariant[] = [...NATIVE_PATHS.map((path) => `native-${path}` as const), 'wasm-relaxed-simd', 'wasm-simd', 'js'];
/**
 * How an H job sums: `'default'`, blocked sums of short chains in working precision (at or below a BLAS zgemm's error,
 * further below for long sums), or
 * `'compensated'`, each entry as if computed in twice the working precision and rounded once
 * (docs/kernels-and-accuracy.md).
 */
export type Accuracy = 'default' | 'compensated';
/**
 * What a journal or a cluster run records of how its blocks are summed: the kernel, its accuracy and the version of
 * that method. Blocks summed another way round differently, so a run never resumes or mixes them. The default went
 * to version 2 when every kernel's blocks were cut into shorter chains (docs/kernels-and-accuracy.md, "The default:
 * summation order"); compensated went to version 2 when the native paths' compensated sums moved to a per-block
 * power-of-two grid, whose bits can differ in the last place from the Dot2 sums before it.
 */
export function summationStamp(kernel: KernelVariant, accuracy: Accuracy): string {
  return accuracy === 'compensated' ? `${kernel} compensated 2` : `${kernel} default 2`;
}
/** What a caller may ask for: a variant, the widest native path this CPU has, or the fastest available. */
export type KernelChoice = 'auto' | 'native' | KernelVariant;

/** Names of the kernels compiled into hpair itself (the table is kernel/builtins.ts). */
export type BuiltinKernelName = 'hermitian/check' | 'hermitian/pack' | 'hermitian/pairs-js' | 'hermitian/pairs-wasm' | 'hermitian/pairs-native';

/** A step's reference to one of hpair's own kernels, its name checked here since the generic runner takes any. */
export function builtinRef(name: BuiltinKernelName): KernelRef {
  return { kind: 'builtin', name };
}
