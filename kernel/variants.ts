import { HpairError } from '../shared/errors.js';
import type { NativePathName } from './kernel-names.js';
import type { HermitianVariant, KernelChoice, KernelVariant } from './variant.js';
import { javascriptVariant } from './variant-js.js';
import { NATIVE_VARIANTS, nativeFastFma } from './variant-native.js';
import { wasmRelaxedSimdVariant, wasmSimdVariant } from './variant-wasm.js';

/**
 * Every H kernel variant: the one place a variant is registered (the native ones are the paths of
 * kernel/native/src/paths.h, in its order).
 */
export const VARIANTS: readonly HermitianVariant[] = [...NATIVE_VARIANTS, wasmRelaxedSimdVariant, wasmSimdVariant, javascriptVariant];

const NATIVE: readonly KernelVariant[] = NATIVE_VARIANTS.map((variant) => variant.name);

/**
 * The variants fastest first on this CPU: `auto` takes the first that runs here, and a job whose scratch does
 * not fit its variant falls back along the same order. A native path whose FMA is a library call in this build
 * (the portable C path on a CPU or build without an FMA instruction) ranks after WebAssembly, before JavaScript.
 */
export function rankedVariants(): readonly HermitianVariant[] {
  const fast = NATIVE_VARIANTS.filter((variant) => nativeFastFma(pathOf(variant)));
  const slow = NATIVE_VARIANTS.filter((variant) => !fast.includes(variant));
  return [...fast, wasmRelaxedSimdVariant, wasmSimdVariant, ...slow, javascriptVariant];
}

const pathOf = (variant: HermitianVariant): NativePathName => variant.name.slice('native-'.length) as NativePathName;
const CHOICES: readonly KernelChoice[] = ['auto', 'native', ...VARIANTS.map((variant) => variant.name)];

export function variantNamed(name: KernelVariant): HermitianVariant {
  const variant = VARIANTS.find((candidate) => candidate.name === name);
  if (variant === undefined) throw new HpairError('INVALID_ARGUMENT', `unknown kernel '${String(name)}'`);
  return variant;
}

/** What a variant choice resolved to, and, when no native path runs, one line saying why. */
export interface KernelResolution {
  readonly variant: HermitianVariant;
  readonly whyNotNative: string | undefined;
}

export function resolveKernel(choice: KernelChoice): KernelResolution {
  if (!CHOICES.includes(choice)) {
    throw new HpairError('INVALID_ARGUMENT', `kernel must be one of ${CHOICES.map((c) => `'${c}'`).join(', ')}; got ${String(choice)}`);
  }
  const ranked = rankedVariants();
  const candidates = choice === 'auto' ? ranked : choice === 'native' ? ranked.filter((v) => NATIVE.includes(v.name)) : [variantNamed(choice)];
  const variant = candidates.find((candidate) => candidate.support().ok);
  if (variant === undefined) {
    const reasons = candidates.map((candidate) => whyNot(candidate)).join('; ');
    throw new HpairError('INVALID_ARGUMENT', `kernel '${choice}' cannot run here: ${reasons}`);
  }
  return { variant, whyNotNative: NATIVE.includes(variant.name) ? undefined : whyNotNative(choice) };
}

/** The next variant after `variant` (in preference order) that runs here and whose wasm scratch fits. */
export function fallbackAfter(variant: HermitianVariant, fits: (candidate: HermitianVariant) => boolean): HermitianVariant | undefined {
  const ranked = rankedVariants();
  return ranked.slice(ranked.indexOf(variant) + 1).find((candidate) => candidate.support().ok && fits(candidate));
}

function whyNotNative(choice: KernelChoice): string {
  if (choice !== 'auto' && choice !== 'native') return `kernel '${choice}' was asked for`;
  // A native path that runs but ranks after WebAssembly: say so rather than why the faster ones do not run.
  const slow = NATIVE.find((name) => variantNamed(name).support().ok);
  if (slow !== undefined) return `${slow} runs here but its FMA is a library call in this build, slower than WebAssembly (ask for kernel '${slow}' to use it)`;
  // The last path in paths.h's order explains best: "no AVX-512F" matters only if AVX2 is missing too.
  const reasons = NATIVE.map((name) => variantNamed(name).support()).filter((support) => !support.ok);
  const last = reasons[reasons.length - 1];
  return last !== undefined && !last.ok ? last.reason : 'no native path runs here';
}

function whyNot(variant: HermitianVariant): string {
  const support = variant.support();
  return support.ok ? `${variant.name} runs` : `${variant.name}: ${support.reason}`;
}
