import { HpairError } from '../shared/errors.js';
import type { HermitianVariant, KernelChoice, KernelVariant } from './variant.js';
import { javascriptVariant } from './variant-js.js';
import { nativeAvx2Variant, nativeAvx512Variant } from './variant-native.js';
import { wasmRelaxedSimdVariant, wasmSimdVariant } from './variant-wasm.js';

/**
 * Every H kernel variant, fastest first: the one place a variant is registered. `auto` takes the first
 * this runtime supports; a job whose scratch does not fit its variant falls back along the same order.
 */
export const VARIANTS: readonly HermitianVariant[] = [nativeAvx512Variant, nativeAvx2Variant, wasmRelaxedSimdVariant, wasmSimdVariant, javascriptVariant];

const NATIVE: readonly KernelVariant[] = ['native-avx512', 'native-avx2'];
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
  const candidates = choice === 'auto' ? VARIANTS : choice === 'native' ? VARIANTS.filter((v) => NATIVE.includes(v.name)) : [variantNamed(choice)];
  const variant = candidates.find((candidate) => candidate.support().ok);
  if (variant === undefined) {
    const reasons = candidates.map((candidate) => whyNot(candidate)).join('; ');
    throw new HpairError('INVALID_ARGUMENT', `kernel '${choice}' cannot run here: ${reasons}`);
  }
  return { variant, whyNotNative: NATIVE.includes(variant.name) ? undefined : whyNotNative(choice) };
}

/** The next variant after `variant` (in preference order) that runs here and whose wasm scratch fits. */
export function fallbackAfter(variant: HermitianVariant, fits: (candidate: HermitianVariant) => boolean): HermitianVariant | undefined {
  return VARIANTS.slice(VARIANTS.indexOf(variant) + 1).find((candidate) => candidate.support().ok && fits(candidate));
}

function whyNotNative(choice: KernelChoice): string {
  if (choice !== 'auto' && choice !== 'native') return `kernel '${choice}' was asked for`;
  // The widest path explains best: "no AVX-512F" matters only if AVX2 is missing too.
  const reasons = NATIVE.map((name) => variantNamed(name).support()).filter((support) => !support.ok);
  const last = reasons[reasons.length - 1];
  return last !== undefined && !last.ok ? last.reason : 'no native path runs here';
}

function whyNot(variant: HermitianVariant): string {
  const support = variant.support();
  return support.ok ? `${variant.name} runs` : `${variant.name}: ${support.reason}`;
}
