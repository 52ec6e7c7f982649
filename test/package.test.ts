// hpair as a consumer installs it: the packed tarball in a scratch `"type": "commonjs"` project, installed with
// no usable compiler (CC=false CXX=false, no node-gyp), used from ESM, CommonJS, strict TypeScript (node16 and
// bundler resolution, .mts and .cts) and esbuild bundles run from another folder.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { kernelStatus } from 'hpair';

const test = suite('package');
const root = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(import.meta.url);
const installDoc = readFileSync(join(root, 'docs/install.md'), 'utf8');
let scratch = '';
let tarball = '';
/** The native kernel `auto` picks on this CPU with a working addon, or undefined where no native path runs. */
const nativeHere = kernelStatus().find((k) => k.kernel.startsWith('native') && k.supported)?.kernel;
const musl = existsSync('/usr/bin/musl-gcc');
const ADDON = 'prebuilds/linux-x64/hpair_native.napi.glibc.node';

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, timeout: 180_000, env: { ...process.env, ...env }, maxBuffer: 16 << 20 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}

function recipe(name: string): string {
  const match = new RegExp(`<!-- recipe: ${name} -->\\s*\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(installDoc);
  assert.ok(match, `docs/install.md has no recipe '${name}'`);
  return match![1];
}

/** The C sources' hash as kernel/native/prebuild.mjs computes it. */
function sourceHash(): string {
  const dir = join(root, 'kernel/native');
  const hash = createHash('sha256');
  for (const file of ['binding.gyp', ...readdirSync(join(dir, 'src')).sort().map((f) => `src/${f}`)]) hash.update(`${file}\0`).update(readFileSync(join(dir, file))).update('\0');
  return hash.digest('hex');
}

/** The summary line of a bundled app: its kernel and why it is not native. */
function kernelLine(stdout: string): { kernel: string; why: string | undefined } {
  const match = /^H is 299×299, computed by ([a-z0-9-]+)(?: \(not native: (.*)\))?\n$/.exec(stdout);
  assert.ok(match, `unexpected output: ${stdout}`);
  return { kernel: match![1], why: match![2] };
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
  // The prebuilt addons are made by prepack, which --ignore-scripts skips below: made (or kept, when built
  // from these sources) here. dist/ is built already (npm test builds first): packed as is.
  const prebuild = await run(process.execPath, [join(root, 'kernel/native/prebuild.mjs')], root);
  assert.is(prebuild.code, 0, `${prebuild.stdout}${prebuild.stderr}`);
  const pack = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], root);
  assert.is(pack.code, 0, pack.stderr);
  const packed = (JSON.parse(pack.stdout) as Array<{ filename: string; size: number; unpackedSize: number }>)[0];
  tarball = join(scratch, packed.filename);
  console.log(`  (tarball ${(packed.size / 1024).toFixed(0)} KiB, ${(packed.unpackedSize / 1024).toFixed(0)} KiB unpacked)`);
  const project = join(scratch, 'app');
  mkdirSync(project);
  // npm init's default type: bundles and .js files are CommonJS here.
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'commonjs' }));
  // No compiler and no node-gyp: the install must not need them where a prebuilt addon fits.
  const noCompiler = { CC: 'false', CXX: 'false', npm_config_node_gyp: join(scratch, 'no-node-gyp.js') };
  const install = await run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], project, noCompiler);
  assert.is(install.code, 0, install.stderr);
});
test.after(() => rmSync(scratch, { recursive: true, force: true }));

test('the tarball holds what a consumer runs, and nothing else', async () => {
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--dry-run', '--json'], root);
  const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0].files.map((f) => f.path);
  for (const path of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.cjs', 'dist/worker.js', 'dist/cli.js', 'dist/types/index.d.ts', 'dist/types-cjs/index.d.ts']) {
    assert.ok(files.includes(path), `${path} is missing`);
  }
  assert.ok(files.includes(ADDON), `${ADDON} is missing`);
  if (musl) assert.ok(files.includes('prebuilds/linux-x64/hpair_native.napi.musl.node'), 'the musl addon is missing');
  else console.log('  (skipped: the musl addon check: musl-gcc is not installed here; apt-get install musl-tools)');
  const prebuilt = JSON.parse(readFileSync(join(root, 'prebuilds/manifest.json'), 'utf8')) as { addons: Record<string, { sourceHash: string }> };
  for (const [name, addon] of Object.entries(prebuilt.addons)) assert.is(addon.sourceHash, sourceHash(), `prebuilds/${name} was built from other C sources`);
  const unwanted = files.filter((path) => /^(dist\/(test|bench)\/|test\/|bench\/|examples\/|kernel\/native\/(build|check)\/)|fixtures|\.npy$|prebuild\.mjs$/.test(path));
  assert.equal(unwanted, [], 'tests, benchmarks or fixtures in the tarball');
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  assert.not.ok(manifest.dependencies?.comlink, 'comlink is bundled into dist: it is not a runtime dependency');
});

test('installed without a compiler, the prebuilt addon runs native', async () => {
  const project = join(scratch, 'app');
  const status = JSON.parse(readFileSync(join(project, 'node_modules/hpair/kernel/native/build/status.json'), 'utf8')) as { built: boolean; prebuilt?: string };
  assert.equal(status, { built: false, prebuilt: ADDON });
  const doctor = await run(process.execPath, [join(project, 'node_modules/hpair/dist/cli.js'), 'doctor', '--json'], project);
  assert.is(doctor.code, 0, doctor.stderr);
  const report = JSON.parse(doctor.stdout) as { addon: { loaded: boolean; origin?: string; file?: string }; auto: { kernel: string } };
  assert.equal([report.addon.loaded, report.addon.origin, report.addon.file], [true, 'prebuilt', join(project, 'node_modules/hpair', ADDON)]);
  if (nativeHere === undefined) console.log('  (skipped: native kernel check: this CPU has no AVX2 + FMA)');
  else assert.is(report.auto.kernel, nativeHere);
});

test('an ES module consumer', async () => {
  const project = join(scratch, 'app');
  writeFileSync(join(project, 'esm.mjs'), check("import * as hpair from 'hpair';"));
  const { code, stdout, stderr } = await run(process.execPath, ['esm.mjs'], project);
  assert.is(code, 0, stderr);
  assertResult(stdout, 'ESM');
  if (nativeHere !== undefined) assert.is((JSON.parse(stdout.trim()) as { kernel: string }).kernel, nativeHere, 'the ES module consumer did not run native');
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

/** Builds the recipe's bundle into app/out (once), and copies out/ to a fresh folder outside the project. */
let bundled = false;
async function bundleElsewhere(name: string): Promise<string> {
  const project = join(scratch, 'app');
  if (!bundled) {
    writeFileSync(join(project, 'build-app.mjs'), recipe('bundling-build').replace("from 'esbuild'", `from ${JSON.stringify(require.resolve('esbuild'))}`));
    writeFileSync(join(project, 'app.mjs'), recipe('bundling-app'));
    const built = await run(process.execPath, ['build-app.mjs'], project);
    assert.is(built.code, 0, built.stderr);
    bundled = true;
  }
  const elsewhere = join(scratch, name);
  cpSync(join(project, 'out'), elsewhere, { recursive: true });
  return elsewhere;
}

test("docs/install.md's esbuild recipe: the bundle runs native from another folder of a CommonJS project", async () => {
  const elsewhere = await bundleElsewhere('elsewhere');
  assert.ok(existsSync(join(elsewhere, 'hpair_native.node')), 'the recipe did not copy the addon');
  const { code, stdout, stderr } = await run(process.execPath, [join(elsewhere, 'app.mjs')], scratch);
  assert.is(code, 0, stderr);
  const { kernel, why } = kernelLine(stdout);
  if (nativeHere === undefined) console.log('  (skipped: native kernel check: this CPU has no AVX2 + FMA)');
  else assert.equal([kernel, why], [nativeHere, undefined]);
});

test('a bundle without its addon, or with one for another platform, runs WebAssembly and says why', async () => {
  const missing = await bundleElsewhere('no-addon');
  rmSync(join(missing, 'hpair_native.node'));
  let result = await run(process.execPath, [join(missing, 'app.mjs')], scratch);
  assert.is(result.code, 0, result.stderr);
  let line = kernelLine(result.stdout);
  assert.ok(line.kernel.startsWith('wasm'), line.kernel);
  assert.match(line.why ?? '', `native kernel not found beside the bundle (${join(missing, 'hpair_native.node')}`);

  // The same addon with its ELF header saying AArch64: refused before dlopen, by name.
  const foreign = await bundleElsewhere('arm64-addon');
  const bytes = readFileSync(join(foreign, 'hpair_native.node'));
  bytes.writeUInt16LE(183, 18);
  writeFileSync(join(foreign, 'hpair_native.node'), bytes);
  result = await run(process.execPath, [join(foreign, 'app.mjs')], scratch);
  assert.is(result.code, 0, result.stderr);
  line = kernelLine(result.stdout);
  assert.ok(line.kernel.startsWith('wasm'), line.kernel);
  assert.match(line.why ?? '', 'is for another platform: it is for linux-arm64, this is linux-x64');

  // The package's prebuilds/ folder beside the bundle instead of one file: picked by platform and C library.
  const multi = await bundleElsewhere('prebuilds-beside');
  rmSync(join(multi, 'hpair_native.node'));
  cpSync(join(scratch, 'app/node_modules/hpair/prebuilds'), join(multi, 'prebuilds'), { recursive: true });
  result = await run(process.execPath, [join(multi, 'app.mjs')], scratch);
  assert.is(result.code, 0, result.stderr);
  if (nativeHere !== undefined) assert.equal(kernelLine(result.stdout), { kernel: nativeHere, why: undefined });
});

test('the nativeAddon pool option: the pool and its workers load that file; one addon per process', async () => {
  const project = join(scratch, 'app');
  const installed = join(project, 'node_modules/hpair');
  // Small jobs run on the calling thread: inlineFlops 0 sends this one to the workers, which must load the file too.
  writeFileSync(
    join(project, 'option-app.mjs'),
    `import { createPool, demoProblem, hermitianReference } from 'hpair';
const pool = createPool({ workers: 2, inlineFlops: 0, workerFile: new URL('./hpair-worker.mjs', import.meta.url), nativeAddon: process.argv[2] });
const { expp, distance } = demoProblem(90, 70);
const h = await pool.hermitian(expp, distance);
const ref = hermitianReference(expp, distance);
let err = 0;
for (let k = 0; k < ref.data.length; k++) err = Math.max(err, Math.abs(h.data[k] - ref.data[k]));
let second;
try { createPool({ workers: 1, nativeAddon: process.argv[3] }); second = 'accepted'; } catch (error) { second = error.code + ': ' + error.message; }
console.log(JSON.stringify({ kernel: h.kernel, why: pool.whyNotNative, err, second }));
await pool.close();
`,
  );
  writeFileSync(
    join(project, 'build-option.mjs'),
    `import { build } from ${JSON.stringify(require.resolve('esbuild'))};
await build({ entryPoints: { 'option-app': 'option-app.mjs', 'hpair-worker': 'hpair/worker' }, bundle: true, platform: 'node', format: 'esm', target: 'node20', outdir: 'option-out', outExtension: { '.js': '.mjs' } });
`,
  );
  const built = await run(process.execPath, ['build-option.mjs'], project);
  assert.is(built.code, 0, built.stderr);
  const elsewhere = join(scratch, 'option-elsewhere');
  cpSync(join(project, 'option-out'), elsewhere, { recursive: true });
  const glibc = join(installed, ADDON);
  const muslAddon = join(installed, 'prebuilds/linux-x64/hpair_native.napi.musl.node');
  const result = await run(process.execPath, [join(elsewhere, 'option-app.mjs'), glibc, muslAddon], scratch);
  assert.is(result.code, 0, result.stderr);
  const out = JSON.parse(result.stdout) as { kernel: string; why?: string; err: number; second: string };
  if (nativeHere !== undefined) assert.equal([out.kernel, out.why], [nativeHere, undefined]);
  assert.ok(out.err < 1e-9, `error ${out.err}`);
  assert.match(out.second, `INVALID_ARGUMENT: nativeAddon: this process already uses ${glibc}`);

  if (!musl) {
    console.log('  (skipped: the musl addon on glibc: musl-gcc is not installed here)');
    return;
  }
  // The musl addon on this glibc Node: a load error that names the C library.
  const wrong = await run(process.execPath, [join(elsewhere, 'option-app.mjs'), muslAddon, muslAddon], scratch);
  assert.is(wrong.code, 0, wrong.stderr);
  const refused = JSON.parse(wrong.stdout) as { kernel: string; why?: string; second: string };
  assert.ok(refused.kernel.startsWith('wasm'), refused.kernel);
  assert.match(refused.why ?? '', `native kernel ${muslAddon} failed to load`);
  assert.match(refused.why ?? '', 'it was built for musl libc; this Node runs on glibc');
  assert.is(refused.second, 'accepted', 'the same file twice is one addon');
});

test('install.mjs refuses a prebuilt addon built from other C sources, and says why native is missing', async () => {
  // A copy of the installed package, so that the other tests keep theirs.
  const copy = join(scratch, 'hpair-copy');
  cpSync(join(scratch, 'app/node_modules/hpair'), copy, { recursive: true });
  const noCompiler = { CC: 'false', CXX: 'false', npm_config_node_gyp: join(scratch, 'no-node-gyp.js') };
  const probe = `import { createPool } from ${JSON.stringify(join(copy, 'dist/index.js'))};
const pool = createPool({ workers: 1 });
console.log(JSON.stringify({ kernel: pool.kernel, why: pool.whyNotNative }));
await pool.close();`;
  writeFileSync(join(scratch, 'probe.mjs'), probe);

  const source = join(copy, 'kernel/native/src/scan.c');
  writeFileSync(source, `${readFileSync(source, 'utf8')}/* patched */\n`);
  let install = await run(process.execPath, [join(copy, 'kernel/native/install.mjs')], copy, noCompiler);
  assert.is(install.code, 0, install.stderr);
  let result = JSON.parse((await run(process.execPath, [join(scratch, 'probe.mjs')], scratch)).stdout) as { kernel: string; why?: string };
  assert.ok(!result.kernel.startsWith('native'), result.kernel);
  // Then node-gyp (made unfindable here) or the compiler is missing: the source build's own reason follows.
  assert.ok(result.why?.startsWith(`native kernel not available: ${ADDON} was built from other C sources than the package's (prebuilds/manifest.json); `), result.why);

  // The sources back as packed, but no addon for this platform in the package: the reason says that.
  cpSync(join(scratch, 'app/node_modules/hpair/kernel/native/src/scan.c'), source);
  rmSync(join(copy, ADDON));
  install = await run(process.execPath, [join(copy, 'kernel/native/install.mjs')], copy, noCompiler);
  assert.is(install.code, 0, install.stderr);
  result = JSON.parse((await run(process.execPath, [join(scratch, 'probe.mjs')], scratch)).stdout) as { kernel: string; why?: string };
  assert.ok(!result.kernel.startsWith('native'), result.kernel);
  assert.ok(result.why?.startsWith('native kernel not available: no prebuilt addon for linux-x64 glibc in the package; '), result.why);
});

test('hpair/cluster typings resolve without bullmq and ioredis installed; the CLI helps without them', async () => {
  const project = join(scratch, 'app');
  assert.not.ok(existsSync(join(project, 'node_modules/bullmq')) || existsSync(join(project, 'node_modules/ioredis')), 'the optional peers were installed');
  writeFileSync(
    join(project, 'cluster.mts'),
    `import { submitToCluster, connectRedis, chooseClusterBlockSize, type SubmitOptions, type ClusterSummary } from 'hpair/cluster';
const options: SubmitOptions = { connection: 'redis://127.0.0.1:1', expp: 'e.npy', distance: 'd.npy', out: 'h.npy', attempts: 2 };
const run: (o: SubmitOptions) => Promise<ClusterSummary> = submitToCluster;
console.log(options.out, typeof run, typeof connectRedis, typeof chooseClusterBlockSize);
`,
  );
  writeFileSync(join(project, 'cluster.cts'), `import cluster = require('hpair/cluster');
console.log(typeof cluster.submitToCluster, cluster.DEFAULT_QUEUE);
`);
  const compilerOptions = { target: 'ES2022', lib: ['ES2022'], strict: true, skipLibCheck: false, noEmit: true, typeRoots: [join(root, 'node_modules/@types')], types: ['node'], module: 'node16', moduleResolution: 'node16' };
  writeFileSync(join(project, 'tsconfig.cluster.json'), JSON.stringify({ compilerOptions, files: ['cluster.mts', 'cluster.cts'] }));
  const tsc = await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.cluster.json'], project);
  assert.is(tsc.code, 0, `${tsc.stdout}${tsc.stderr}`);
  // A wrong type is still an error: the typings are not `any` throughout.
  writeFileSync(join(project, 'cluster-wrong.mts'), `import type { SubmitOptions } from 'hpair/cluster';
const o: SubmitOptions = { connection: 'redis://x', expp: 1, distance: 'd', out: 'h' };
console.log(o);
`);
  writeFileSync(join(project, 'tsconfig.wrong.json'), JSON.stringify({ compilerOptions, files: ['cluster-wrong.mts'] }));
  const wrong = await run(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', 'tsconfig.wrong.json'], project);
  assert.is(wrong.code, 2, `${wrong.stdout}${wrong.stderr}`);
  assert.match(wrong.stdout, "Type 'number' is not assignable to type 'string'");

  const help = await run(process.execPath, [join(project, 'node_modules/hpair/dist/cli.js'), 'cluster', 'submit', '--help'], project);
  assert.is(help.code, 0, help.stderr);
  assert.match(help.stdout, /^usage: hpair cluster submit --redis URL/);
});

test.run();
