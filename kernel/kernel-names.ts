/** Which pair kernel runs an H job. */
export type KernelVariant = 'native-avx512' | 'native-avx2' | 'wasm-relaxed-simd' | 'wasm-simd' | 'js';
/**
 * How an H job sums: `'default'`, blocked sums in working precision (at a BLAS zgemm's level, better for long sums), or
 * `'compensated'`, each entry as if computed in twice the working precision and rounded once
 * (docs/kernels-and-accuracy.md).
 */
export type Accuracy = 'default' | 'compensated';
/** What a caller may ask for: a variant, the widest native path this CPU has, or the fastest available. */
export type KernelChoice = 'auto' | 'native' | KernelVariant;
