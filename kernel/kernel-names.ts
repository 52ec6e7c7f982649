/** Which pair kernel runs an H job. */
export type KernelVariant = 'native-avx512' | 'native-avx2' | 'wasm-relaxed-simd' | 'wasm-simd' | 'js';
/** What a caller may ask for: a variant, the widest native path this CPU has, or the fastest available. */
export type KernelChoice = 'auto' | 'native' | KernelVariant;
