import { kernelBytes, type KernelVariant } from './kernel-variant.js';

/** Compiles a variant once per process; the Module is then shared with every worker by postMessage. */
const compiled = new Map<KernelVariant, WebAssembly.Module>();
export function compileKernel(variant: Exclude<KernelVariant, 'js'>): WebAssembly.Module {
  let module = compiled.get(variant);
  if (module === undefined) {
    module = new WebAssembly.Module(kernelBytes[variant]);
    compiled.set(variant, module);
  }
  return module;
}
