import type { Kernel } from '../shared/kernel-contract.js';
import { checkKernel } from './hermitian-check.js';
import { packKernel } from './hermitian-pack.js';
import { pairsJsKernel } from './hermitian-pairs-js.js';
import { pairsNativeKernel } from './hermitian-pairs-native.js';
import { pairsWasmKernel } from './hermitian-pairs-wasm.js';
import type { BuiltinKernelName } from './kernel-names.js';

/** hpair's own kernels by name: what a step's `{ kind: 'builtin', name }` runs, in a worker or inline. */
export const builtinKernels: Readonly<Record<BuiltinKernelName, Kernel>> = {
  'hermitian/check': checkKernel as unknown as Kernel,
  'hermitian/pack': packKernel as unknown as Kernel,
  'hermitian/pairs-js': pairsJsKernel as unknown as Kernel,
  'hermitian/pairs-wasm': pairsWasmKernel as unknown as Kernel,
  'hermitian/pairs-native': pairsNativeKernel as unknown as Kernel,
};
