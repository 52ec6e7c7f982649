// Builds dist/: the library, its worker and the CLI as one esbuild graph (shared chunks, so
// `new URL('./worker.js', import.meta.url)` resolves next to whichever chunk asks), a CommonJS build of the
// library for require(), the tests and benchmarks against the built package, and the public .d.ts files
// (once for import, once for require).
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { generateWat } from './kernel/wasm/generate-wat.mjs';
import { writeNativePathsModule } from './kernel/native/paths.mjs';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });
// NATIVE_PATHS (kernel/native-paths.generated.ts) from the C list of paths, before any TypeScript is compiled.
writeNativePathsModule();

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
  entryPoints: { index: 'index.ts', worker: 'workers/worker.ts', cli: 'cli/main.ts', cluster: 'cluster/index.ts' },
  outdir: 'dist',
  splitting: true,
  external: ['bullmq', 'ioredis'], // optional peer dependencies, imported only by hpair/cluster
  chunkNames: 'chunk-[hash]',
});

// require('hpair'): the same library as CommonJS, beside the ESM files so that its import.meta.url (shimmed
// from __filename) finds worker.js and the native addon where the ESM build does. Its workers are the ESM ones.
await build({
  ...common,
  format: 'cjs',
  entryPoints: { index: 'index.ts', cluster: 'cluster/index.ts' },
  outExtension: { '.js': '.cjs' },
  external: ['bullmq', 'ioredis'],
  outdir: 'dist',
  define: { 'import.meta.url': '__hpairModuleUrl' },
  banner: { js: "const __hpairModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
});

// Tests and benchmarks import the package by its own name, so they exercise dist/ exactly as a user would.
const testEntries = ['test', 'test/helpers'].flatMap((dir) =>
  readdirSync(dir).filter((f) => f.endsWith('.ts')).map((f) => `${dir}/${f}`),
);
await build({ ...common, entryPoints: testEntries, outdir: 'dist/test', outbase: 'test', external: ['hpair', 'hpair/cluster', 'uvu', 'uvu/assert', 'bullmq', 'ioredis'] });
const benchEntries = ['main', 'vs-piscina', 'piscina-distance-worker', 'piscina-shared-worker', 'distance-kernel', 'out-of-core', 'cluster', 'release', 'report', 'event-loop', 'accuracy', 'accuracy-problem'].map((name) => `bench/${name}.ts`);
await build({ ...common, entryPoints: benchEntries, outdir: 'dist/bench', external: ['hpair', 'hpair/cluster', 'tinybench', 'piscina', 'bullmq', 'ioredis'] });

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
// hpair/cluster's typings name types of bullmq and ioredis, optional peers a consumer may not have installed:
// each such line gets a `@ts-ignore` (tsc drops comments from .d.ts files), so the typings still resolve, with
// those types `any`. Only `import('…')` types are allowed there: an import declaration would fail the build.
const optionalPeer = /\bimport\(\s*['"](bullmq|ioredis)['"]\s*\)|\bfrom\s+['"](bullmq|ioredis)['"]/;
let peerLines = 0;
for (const file of readdirSync('dist/types', { recursive: true }).filter((f) => String(f).endsWith('.d.ts')).map((f) => `dist/types/${f}`)) {
  const lines = readFileSync(file, 'utf8').split('\n');
  if (!lines.some((line) => optionalPeer.test(line))) continue;
  const patched = lines.flatMap((line) => {
    if (!optionalPeer.test(line)) return [line];
    if (/\bfrom\s+['"]/.test(line) || !/^export type \w+ = /.test(line)) throw new Error(`${file}: an optional peer's type must be a one-line \`export type X = import('…')…\`: ${line}`);
    peerLines += 1;
    return ['// @ts-ignore: an optional peer dependency (bullmq, ioredis): `any` where it is not installed', line];
  });
  writeFileSync(file, patched.join('\n'));
}
if (peerLines === 0) throw new Error('build.mjs: no bullmq/ioredis types found in dist/types: update the @ts-ignore step');
// The same declarations read as CommonJS (for `require` under TypeScript's node16 resolution): a folder whose
// package.json says so.
cpSync('dist/types', 'dist/types-cjs', { recursive: true });
writeFileSync('dist/types-cjs/package.json', `${JSON.stringify({ type: 'commonjs' })}\n`);
