// Builds dist/: the library, its worker and the CLI as one esbuild graph (shared chunks, so
// `new URL('./worker.js', import.meta.url)` resolves next to whichever chunk asks), the tests and
// benchmarks against the built package, and the public .d.ts files.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { generateWat } from './kernel/wasm/generate-wat.mjs';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });

/** The WebAssembly pair kernels, assembled from generated WAT with wabt and embedded as base64. */
async function assembleKernels() {
  const wabt = await require('wabt')();
  // validate() does not inherit parseWat's features: both need them (threads = shared memory).
  const features = { simd: true, relaxed_simd: true, threads: true };
  const assemble = (name, wat) => {
    const module = wabt.parseWat(name, wat, features);
    try {
      module.resolveNames();
      module.validate(features);
      return Buffer.from(module.toBinary({}).buffer).toString('base64');
    } finally {
      module.destroy();
    }
  };
  const shape = { mr: 4, nr: 2 };
  return {
    simd: assemble('simd.wat', generateWat({ relaxed: false, ...shape })),
    relaxed: assemble('relaxed.wat', generateWat({ relaxed: true, ...shape })),
    ...shape,
  };
}
const kernels = await assembleKernels();
const wasmKernels = {
  name: 'wasm-kernels',
  setup(b) {
    b.onResolve({ filter: /^virtual:wasm-kernels$/ }, (args) => ({ path: args.path, namespace: 'wasm-kernels' }));
    b.onLoad({ filter: /.*/, namespace: 'wasm-kernels' }, () => ({
      contents: Object.entries(kernels).map(([key, value]) => `export const ${key} = ${JSON.stringify(value)};`).join('\n'),
      loader: 'js',
    }));
  },
};

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', sourcemap: true, logLevel: 'warning', plugins: [wasmKernels] };

await build({
  ...common,
  entryPoints: { index: 'index.ts', worker: 'workers/worker.ts', cli: 'cli/main.ts' },
  outdir: 'dist',
  splitting: true,
  chunkNames: 'chunk-[hash]',
});

// Tests and benchmarks import the package by its own name, so they exercise dist/ exactly as a user would.
const testEntries = ['test', 'test/helpers'].flatMap((dir) =>
  readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => `${dir}/${f}`),
);
await build({ ...common, entryPoints: testEntries, outdir: 'dist/test', outbase: 'test', external: ['hpair'] });
const benchEntries = ['main', 'memory-probe', 'vs-piscina', 'piscina-distance-worker', 'distance-kernel'].map((name) => `bench/${name}.ts`);
await build({ ...common, entryPoints: benchEntries, outdir: 'dist/bench', external: ['hpair', 'tinybench', 'piscina'] });

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
