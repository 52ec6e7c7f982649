// Builds the prebuilt addons that the package ships (prebuilds/<platform>-<arch>/hpair_native.napi.<libc>.node,
// node-gyp-build's layout), with node-gyp and the compilers on this machine; run by `npm run prebuild` and by
// `prepack`, so `npm pack` and `npm publish` always ship addons built from the C source being packed. Nothing
// is downloaded. It runs on a linux-x64 host:
//
//   node kernel/native/prebuild.mjs [--force]
//
// | target | compiler | checked here |
// |---|---|---|
// | linux-x64 glibc | cc (gcc or clang) | loads in this Node; check/driver-12x16.c built with cc runs bit-identical |
// | linux-x64 musl | musl-gcc (Debian: apt-get install musl-tools) | links against no glibc symbol; the driver check built with musl-gcc -static runs bit-identical |
// | linux-arm64 glibc | aarch64-linux-gnu-gcc and qemu-aarch64 (Debian: apt-get install gcc-aarch64-linux-gnu qemu-user) | an AArch64 ELF; the driver check built -static runs under qemu bit-identical, with the same bits as the x86-64 check |
//
// On arm64 only the portable path runs (the x86 paths compile to a record that says why not). A target whose
// compiler (or, for arm64, qemu) is missing is skipped with a warning;
// one whose build or check fails makes this script fail. prebuilds/manifest.json records the hash of the
// sources each addon was built from: an addon whose hash matches is kept unless --force.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readNativePaths } from './paths.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const out = path.join(root, 'prebuilds');
const force = process.argv.includes('--force');

const fail = (message) => {
  console.error(`prebuild: ${message}`);
  process.exit(1);
};
if (process.platform !== 'linux' || process.arch !== 'x64') fail(`prebuilt addons are made on a linux-x64 host (this is ${process.platform}-${process.arch})`);

/** Every file the addon is built from, hashed in a fixed order. */
function sourceHash() {
  const hash = createHash('sha256');
  const files = ['binding.gyp', ...readdirSync(path.join(here, 'src')).sort().map((f) => `src/${f}`)];
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(path.join(here, file))).update('\0');
  return hash.digest('hex');
}

const run = (command, args, options = {}) => spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
const works = (command) => {
  const probe = run(command, ['--version']);
  return !probe.error && probe.status === 0;
};

// The x86-64 glibc target comes first: its driver check's lines (with the hashes of H) are what the others must print.
const targets = [
  { arch: 'x64', libc: 'glibc', cc: 'cc', staticCheck: false },
  { arch: 'x64', libc: 'musl', cc: 'musl-gcc', staticCheck: true, hint: 'apt-get install musl-tools' },
  { arch: 'arm64', libc: 'glibc', cc: 'aarch64-linux-gnu-gcc', staticCheck: true, runner: 'qemu-aarch64', hint: 'apt-get install gcc-aarch64-linux-gnu qemu-user' },
];
/** The x86-64 glibc driver check's output: every other build must print the same bits. */
let hostCheck;
const manifestFile = path.join(out, 'manifest.json');
const previous = existsSync(manifestFile) ? JSON.parse(readFileSync(manifestFile, 'utf8')) : { addons: {} };
const hash = sourceHash();
const manifest = { sourceHash: hash, addons: {}, skipped: {} };

for (const target of targets) {
  const name = `linux-${target.arch}/hpair_native.napi.${target.libc}.node`;
  const file = path.join(out, name);
  const kept = previous.addons?.[name];
  if (!force && kept?.sourceHash === hash && existsSync(file)) {
    manifest.addons[name] = kept;
    console.error(`prebuild: ${name} is up to date`);
    continue;
  }
  rmSync(file, { force: true });
  const missing = [target.cc, target.runner].filter((command) => command !== undefined && !works(command));
  if (missing.length > 0) {
    manifest.skipped[`linux-${target.arch} ${target.libc}`] = `no ${missing.join(' or ')} on the machine that packed it`;
    console.warn(`prebuild: WARNING: skipping ${name}: ${missing.join(' and ')} not found${target.hint ? ` (${target.hint})` : ''}`);
    continue;
  }
  const work = mkdtempSync(path.join(tmpdir(), `hpair-prebuild-${target.arch}-${target.libc}-`));
  try {
    cpSync(path.join(here, 'binding.gyp'), path.join(work, 'binding.gyp'));
    cpSync(path.join(here, 'src'), path.join(work, 'src'), { recursive: true });
    // install.mjs finds npm's node-gyp and this Node's headers; forced to build from source with this compiler.
    // npm_config_arch: node-gyp's target architecture (the Node headers are the same for every one).
    const env = { ...process.env, HPAIR_BUILD_FROM_SOURCE: '1', CC: target.cc, CXX: target.cc, LINK: target.cc, npm_config_arch: target.arch };
    delete env.HPAIR_NO_NATIVE;
    run(process.execPath, [path.join(here, 'install.mjs'), work], { env, stdio: ['ignore', 2, 2] });
    const status = JSON.parse(readFileSync(path.join(work, 'build/status.json'), 'utf8'));
    if (status.built !== true) fail(`${name}: ${status.reason}`);
    const built = path.join(work, 'build/Release/hpair_native.node');
    const checks = [...libcCheck(target, built), ...driverCheck(target, work)];
    mkdirSync(path.dirname(file), { recursive: true });
    copyFileSync(built, file);
    manifest.addons[name] = { sourceHash: hash, compiler: `${target.cc}: ${firstLine(run(target.cc, ['--version']).stdout)}`, checks };
    console.error(`prebuild: ${name} built and checked (${checks.join('; ')})`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
mkdirSync(out, { recursive: true });
writeFileSync(manifestFile, `${JSON.stringify(manifest, null, 2)}\n`);
if (!manifest.addons['linux-x64/hpair_native.napi.glibc.node']) fail('no linux-x64 glibc addon: the package would have none for its main platform');

function firstLine(text) {
  return (text ?? '').split('\n')[0].trim();
}

/** glibc: the addon loads in this Node and lists its paths. musl: it needs no glibc (readelf). */
function libcCheck(target, built) {
  if (target.arch !== process.arch) {
    const header = run('readelf', ['-h', built]);
    if (header.error || header.status !== 0) fail(`${built}: readelf failed`);
    if (!/Machine:\s+AArch64/.test(header.stdout)) fail(`the ${target.arch} addon is not an AArch64 file: ${header.stdout}`);
    const versions = [...(run('readelf', ['-V', built]).stdout ?? '').matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    const newest = versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]).pop();
    return ['an AArch64 shared object (not loaded: no arm64 Node here)', ...(newest ? [`needs glibc ${newest.join('.')} or later`] : [])];
  }
  if (target.libc === 'glibc') {
    const probe = run(process.execPath, ['-e', `const a = require(${JSON.stringify(built)}); process.stdout.write(JSON.stringify(a.info().paths.map((p) => [p.name, p.supported])))`]);
    if (probe.status !== 0) fail(`the glibc addon does not load in this Node: ${probe.stderr}`);
    const versions = [...(run('readelf', ['-V', built]).stdout ?? '').matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
    const newest = versions.sort((a, b) => a[0] - b[0] || a[1] - b[1]).pop();
    return ['loads in this Node', ...(newest ? [`needs glibc ${newest.join('.')} or later`] : [])];
  }
  const elf = run('readelf', ['-dV', built]);
  if (elf.error || elf.status !== 0) return ['not inspected (no readelf)'];
  const needed = [...elf.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  if (/GLIBC_/.test(elf.stdout) || needed.some((lib) => lib !== 'libc.so')) fail(`the musl addon needs glibc or other libraries: ${needed.join(', ')}`);
  return [`needs only ${needed.join(', ') || 'nothing'}, no glibc symbol`];
}

/** The shared driver's bit-for-bit check (check/driver-12x16.c, against every path of paths.h) built with the target's compiler, run here. */
function driverCheck(target, work) {
  // The reference bits, when the x86-64 glibc addon was up to date and so not checked in this run.
  if (target !== targets[0] && hostCheck === undefined) driverCheck(targets[0], work);
  const exe = path.join(work, 'driver-12x16');
  const sources = ['check/driver-12x16.c', ...readNativePaths().map((name) => `src/path_${name}.c`), 'src/scratch.c', 'src/cpu.c'].map((file) => path.join(here, file));
  const args = ['-O2', '-ffp-contract=off', `-I${path.join(here, 'src')}`, ...sources, '-lm', '-o', exe];
  const compiled = run(target.cc, target.staticCheck ? ['-static', ...args] : args);
  if (compiled.status !== 0) fail(`the driver check does not build with ${target.cc}: ${compiled.stderr}`);
  const checked = target.runner ? run(target.runner, [exe]) : run(exe, []);
  // Exit 4: no listed path runs on that CPU, so its cases' bits are compared with the x86-64 build's only.
  if ((checked.status !== 0 && checked.status !== 4) || /DIFFERENT/.test(checked.stdout)) fail(`the driver check built with ${target.cc} failed (exit ${checked.status}): ${checked.stdout}${checked.stderr}`);
  // The first line names the paths that ran, which differ between CPUs; each case line carries the bits, hashed.
  const [ran, ...lines] = checked.stdout.split('\n');
  const bits = lines.map((line) => line.replace(/^(N \d+ M \d+ tile \d+): [^(]*(\(H [0-9a-f]{16}, compensated [0-9a-f]{16}\))$/, '$1 $2')).join('\n');
  if (target === targets[0]) hostCheck = bits;
  else if (bits !== hostCheck) fail(`the driver check built with ${target.cc} computes other bits than the x86-64 glibc build:\n${checked.stdout}\nagainst\n${hostCheck}`);
  const how = `${target.cc}${target.staticCheck ? ' -static' : ''}${target.runner ? `, run under ${target.runner}` : ''}`;
  const against = checked.status === 4 ? 'no native path runs there' : `against ${ran.replace(/^paths: /, '').split(' ').join(', ')}`;
  return [`driver check bit-identical (${how}; ${against})${target === targets[0] ? '' : ', the same bits as the x86-64 glibc build'}`];
}
