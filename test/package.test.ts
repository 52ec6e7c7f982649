// hpair as a consumer installs it: the packed tarball in a scratch project, used from ESM, CommonJS, strict
// TypeScript (node16 and bundler resolution, .mts and .cts) and an esbuild bundle run from another folder.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('package');
const root = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);
const readme = readFileSync(join(root, 'docs', 'api.md'), 'utf8'); // the page with the bundling recipe
let scratch = '';
let tarball = '';

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: 180_000, env: { ...process.env, ...env }, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}

function recipe(name: string): string {
  const match = new RegExp(`<!-- recipe: ${name} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(match, `docs/api.md has no recipe '${name}'`);
  return match![1];
}

/** What every consumer prints: H for a fixed problem checked against the reference port, as JSON. */
const check = (load: string): string => `${load}
const { expp, distance } = hpair.demoProblem(60, 40);
const pool = hpair.createPool({ workers: 2 });
const h = await pool.hermitian(expp, distance);
const ref = hpair.hermitianReference(expp, distance);
let err = 0, scale = 0;
for (let k = 0; k < ref.data.length; k++) { err = Math.max(err, Math.abs(h.data[k] - ref.data[k])); scale = Math.max(scale, Math.abs(ref.data[k])); }
console.log(JSON.stringify({ rows: h.rows, kernel: h.kernel, relativeError: err / scale }));
await pool.close();`;

function assertResult(stdout: string, what: string): void {
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as { rows: number; relativeError: number };
  assert.is(result.rows, 59, what);
  assert.ok(result.relativeError < 1e-12, `${what}: relative error ${result.relativeError}`);
}

test.before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'hpair-consumer-'));
  // dist/ is built already (npm test builds first): pack it as is, without the prepack rebuild.
  const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], root);
  assert.is(pack.code, 0, pack.stderr);
  tarball = join(scratch, (JSON.parse(pack.stdout) as Array<{ filename: string }>)[0].filename);
  const project = join(scratch, 'app');
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const install = await run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], project);
  assert.is(install.code, 0, install.stderr);
});
test.after(() => rmSync(scratch, { recursive: true, force: true }));

test('the tarball holds what a consumer runs, and nothing else', async () => {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--dry-run', '--json'], root);
  const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
  for (const path of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.cjs', 'dist/worker.js', 'dist/cli.js', 'dist/types/index.d.ts', 'dist/types-cjs/index.d.ts']) {
    assert.ok(files.includes(path), `${path} is missing`);
  }
  const unwanted = files.filter((path) => /^(dist\/(test|bench)\/|test\/|bench\/|examples\/)|fixtures|\.npy$/.test(path));
  assert.equal(unwanted, [], 'tests, benchmarks or fixtures in the tarball');
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  assert.not.ok(manifest.dependencies?.comlink, 'comlink is bundled into dist: it is not a runtime dependency');
});

test('an ES module consumer', async () => {
  const project = join(scratch, 'app');
  writeFileSync(join(project, 'esm.mjs'), check("import * as hpair from 'hpair';"));
  const { code, stdout, stderr } = await run(process.execPath, ['esm.mjs'], project);
  assert.is(code, 0, stderr);
  assertResult(stdout, 'ESM');
});

test('a CommonJS consumer (require)', async () => {
  const project = join(scratch, 'app');
  writeFileSync(join(project, 'cjs.cjs'), `(async () => {\n${check("const hpair = require('hpair');")}\n})().catch((e) => { console.error(e); process.exit(1); });`);
  const { code, stdout, stderr } = await run(process.execPath, ['cjs.cjs'], project);
  assert.is(code, 0, stderr);
  assertResult(stdout, 'CommonJS');
});

test('strict TypeScript consumers typecheck: .mts and .cts under node16, and bundler resolution', async () => {
  const project = join(scratch, 'app');
  const typesDir = join(root, 'node_modules/@types');
  const source = `const pool = createPool({ workers: 2, kernel: 'auto' });
const h: HermitianResult = await pool.hermitian({ rows: 3, cols: 2, re: [1, 2, 3, 4, 5, 6], im: new Float32Array(6) }, [1, 1]);
const kernel: KernelVariant = h.kernel;
pool.on('error', (error: HpairError) => console.log(error.code));
const stats: PoolStats = pool.stats();
console.log(kernel, stats.runMs.p50);
await pool.close();
export {};
`;
  writeFileSync(join(project, 'main.mts'), `import { createPool, type HermitianResult, type HpairError, type KernelVariant, type PoolStats } from 'hpair';\n${source}`);
  writeFileSync(
    join(project, 'main.cts'),
    `import hpair = require('hpair');\nasync function main(): Promise<void> {\n  const pool = hpair.createPool({ workers: 2 });\n  const h: hpair.HermitianResult = await pool.hermitian(hpair.demoProblem(4, 3).expp, [1, 1, 1]);\n  console.log(h.kernel);\n  await pool.close();\n}\nvoid main();\n`,
  );
  const compilerOptions = { target: 'ES2022', lib: ['ES2022', 'ESNext.Disposable'], strict: true, skipLibCheck: false, noEmit: true, typeRoots: [typesDir], types: ['node'] };
  writeFileSync(join(project, 'tsconfig.node16.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'node16', moduleResolution: 'node16' }, files: ['main.mts', 'main.cts'] }));
  writeFileSync(join(project, 'tsconfig.bundler.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, module: 'esnext', moduleResolution: 'bundler' }, files: ['main.mts'] }));
  for (const config of ['tsconfig.node16.json', 'tsconfig.bundler.json']) {
    const { code, stdout, stderr } = await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', config], project);
    assert.is(code, 0, `${config}: ${stdout}${stderr}`);
  }
});

test("the esbuild recipe of docs/api.md: a bundled app runs from another folder", async () => {
  const project = join(scratch, 'app');
  writeFileSync(join(project, 'build-app.mjs'), recipe('bundling-build').replace("from 'esbuild'", `from ${JSON.stringify(require.resolve('esbuild'))}`));
  writeFileSync(join(project, 'app.mjs'), recipe('bundling-app'));
  const built = await run(process.execPath, ['build-app.mjs'], project);
  assert.is(built.code, 0, built.stderr);
  const elsewhere = join(scratch, 'elsewhere');
  cpSync(join(project, 'out'), elsewhere, { recursive: true });
  const { code, stdout, stderr } = await run(process.execPath, [join(elsewhere, 'app.js')], scratch);
  assert.is(code, 0, stderr);
  assert.match(stdout, /^H is 299×299, computed by [a-z0-9-]+\n$/);
});

test.run();
