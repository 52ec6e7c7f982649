// Builds dist/: the library, its worker and the CLI as one esbuild graph (shared chunks, so
// `new URL('./worker.js', import.meta.url)` resolves next to whichever chunk asks), the tests and
// benchmarks against the built package, and the public .d.ts files.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
rmSync('dist', { recursive: true, force: true });

const common = { bundle: true, platform: 'node', format: 'esm', target: 'node20', sourcemap: true, logLevel: 'warning' };

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
await build({ ...common, entryPoints: ['bench/main.ts'], outdir: 'dist/bench', external: ['hpair', 'tinybench'] });

execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
