import { HpairError } from '../shared/errors.js';
import type { Kernel } from '../shared/kernel-contract.js';
import type { KernelRef } from '../shared/protocol.js';

/** Each module is imported once per thread; later jobs reuse the cached promise. */
const imported = new Map<string, Promise<Kernel>>();

/** Whether `ref`'s module was imported on this thread already (awaiting it then runs no other task). */
export function kernelImported(ref: KernelRef): boolean {
  return ref.kind === 'builtin' || imported.has(`${ref.url}#${ref.exportName}`);
}

/** The kernels a step may name as `{ kind: 'builtin', name }`, by name. */
export type BuiltinKernels = Readonly<Record<string, Kernel>>;

export function builtinKernel(builtins: BuiltinKernels, name: string): Kernel {
  if (!Object.hasOwn(builtins, name)) throw new HpairError('INVALID_ARGUMENT', `no built-in kernel '${String(name)}'`);
  return builtins[name] as Kernel;
}

export function loadKernel(ref: KernelRef, builtins: BuiltinKernels): Promise<Kernel> | Kernel {
  if (ref.kind === 'builtin') return builtinKernel(builtins, ref.name);
  const key = `${ref.url}#${ref.exportName}`;
  let kernel = imported.get(key);
  if (kernel === undefined) {
    kernel = importKernel(ref.url, ref.exportName);
    imported.set(key, kernel);
    // A failed import is not cached: the file may be fixed before the next job.
    kernel.catch(() => imported.delete(key));
  }
  return kernel;
}

async function importKernel(url: string, exportName: string): Promise<Kernel> {
  let namespace: Record<string, unknown>;
  try {
    namespace = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new HpairError('KERNEL_FAILED', `cannot import kernel module ${url}: ${(error as Error).message}`, { cause: error });
  }
  const candidate = namespace[exportName] as Partial<Kernel> | undefined;
  if (typeof candidate !== 'object' || candidate === null || typeof candidate.tile !== 'function') {
    throw new HpairError('KERNEL_FAILED', `${url} has no export '${exportName}' with a tile(tile, context) function`);
  }
  return candidate as Kernel;
}
