// Makes the native kernel available at install time, and never fails the install: the library runs without it.
// Run by `npm install` as the package's `install` script, or by hand:
//
//   node kernel/native/install.mjs [directory]     (default: this file's folder; a test builds a copy elsewhere)
//
// First choice: the prebuilt addon the package ships for this platform, CPU and C library
// (prebuilds/linux-x64/hpair_native.napi.glibc.node, made by prebuild.mjs); when it loads, nothing is compiled,
// so an install without a C compiler still runs native. Otherwise it builds kernel/native/build/Release/
// hpair_native.node from source with the node-gyp that npm ships and the Node headers already on this machine
// (it never downloads anything). A prebuilt addon is used only when prebuilds/manifest.json says it was built
// from the C sources beside this script, and never in a source checkout. HPAIR_BUILD_FROM_SOURCE=1 skips the
// prebuilt addon; HPAIR_NO_NATIVE=1 skips both. It always writes build/status.json: { "built": true }, { "built": false, "prebuilt": "prebuilds/…" }
// or { "built": false, "reason": "…" }, plus build/build.log with the compiler's output when it ran.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.resolve(process.argv[2] ?? path.dirname(fileURLToPath(import.meta.url)));
const buildDir = path.join(dir, 'build');
const relative = path.relative(process.cwd(), dir) || '.';

function finish(status, log) {
  mkdirSync(buildDir, { recursive: true });
  writeFileSync(path.join(buildDir, 'status.json'), `${JSON.stringify(status)}\n`);
  if (log !== undefined) writeFileSync(path.join(buildDir, 'build.log'), log);
  if (status.built) console.log(`hpair: native kernel built (${path.join(relative, 'build/Release/hpair_native.node')})`);
  else if (status.prebuilt) console.log(`hpair: native kernel prebuilt for this platform (${status.prebuilt})`);
  else console.log(`hpair: native kernel not built: ${status.reason}`);
  process.exit(0);
}
/** Why the prebuilt addon was not used, when it was looked for: every later reason says it too. */
let prebuiltLog = '';
const skip = (reason, log) => finish({ built: false, reason: prebuiltLog ? `${prebuiltLog}; ${reason}` : reason }, log);
const oneLine = (text) => text.replace(/\s+/g, ' ').trim().slice(0, 300);

/** The C sources' hash, as prebuild.mjs records it for each addon it builds. */
function sourceHash() {
  const hash = createHash('sha256');
  for (const file of ['binding.gyp', ...readdirSync(path.join(dir, 'src')).sort().map((f) => `src/${f}`)]) hash.update(`${file}\0`).update(readFileSync(path.join(dir, file))).update('\0');
  return hash.digest('hex');
}

function prebuiltSourceHash(name) {
  try {
    return JSON.parse(readFileSync(path.resolve(dir, '../../prebuilds/manifest.json'), 'utf8')).addons[name].sourceHash;
  } catch {
    return undefined;
  }
}

/** '.glibc' or '.musl' on Linux (from Node's own ELF interpreter; as addon.ts decides), '' elsewhere. */
function libcTag() {
  if (process.platform !== 'linux') return '';
  try {
    const fd = openSync(process.execPath, 'r');
    const head = Buffer.alloc(4096);
    const text = head.toString('latin1', 0, readSync(fd, head, 0, 4096, 0));
    closeSync(fd);
    if (/ld-musl-/.test(text)) return '.musl';
    if (/ld-linux[-.a-z0-9_]*\.so/.test(text)) return '.glibc';
  } catch {
    // unreadable: ask process.report
  }
  return process.report?.getReport()?.header?.glibcVersionRuntime ? '.glibc' : '.musl';
}

try {
  // A stale addon from an earlier install must not outlive a build that now fails or is skipped.
  rmSync(buildDir, { recursive: true, force: true });

  if (process.env.HPAIR_NO_NATIVE && process.env.HPAIR_NO_NATIVE !== '0') skip('HPAIR_NO_NATIVE is set');
  if (process.platform === 'win32') skip('the native kernel builds with GCC or Clang only (not on Windows)');

  // A prebuilt addon that loads here makes a compiler unnecessary. Why it did not is kept for the build log.
  // A source checkout (it has check/, which the package does not ship) always builds: the C being edited is
  // what must run there, not an addon prebuilt from an earlier state of it.
  const fromSource = (process.env.HPAIR_BUILD_FROM_SOURCE && process.env.HPAIR_BUILD_FROM_SOURCE !== '0') || existsSync(path.join(dir, 'check'));
  if (!fromSource) {
    const name = `${process.platform}-${process.arch}/hpair_native.napi${libcTag()}.node`;
    const prebuilt = path.resolve(dir, '../../prebuilds', name);
    const madeFrom = prebuiltSourceHash(name);
    if (existsSync(prebuilt) && madeFrom !== sourceHash()) {
      prebuiltLog = `prebuilds/${name} was built from other C sources than the package's (prebuilds/manifest.json)`;
    } else if (existsSync(prebuilt)) {
      try {
        const addon = createRequire(import.meta.url)(prebuilt);
        if (typeof addon.info !== 'function' || !Array.isArray(addon.info().paths)) throw new Error('it is not the hpair native kernel');
        finish({ built: false, prebuilt: `prebuilds/${name}` });
      } catch (error) {
        prebuiltLog = `prebuilds/${name} does not load here (${oneLine(error instanceof Error ? error.message : String(error))})`;
      }
    } else prebuiltLog = `no prebuilt addon for ${process.platform}-${process.arch}${libcTag().replace('.', ' ')} in the package`;
  }

  // Node's own headers: npm_config_nodedir, else the installation this node runs from (include/node/node_api.h).
  const execDirs = [...new Set([process.execPath, realpathSync(process.execPath)].map((p) => path.resolve(p, '../..')))];
  const nodedir = process.env.npm_config_nodedir || execDirs.find((d) => existsSync(path.join(d, 'include/node/node_api.h')));
  if (!nodedir) skip(`no Node headers found next to ${process.execPath} (set npm_config_nodedir); not downloading them`);

  // npm's node-gyp: npm_config_node_gyp (npm sets it for scripts), else the one bundled with npm beside node.
  const nodeGyp =
    process.env.npm_config_node_gyp ||
    execDirs.map((d) => path.join(d, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')).find((p) => existsSync(p));
  if (!nodeGyp || !existsSync(nodeGyp)) skip('node-gyp not found (npm_config_node_gyp is unset and npm has none beside node)');

  // A C compiler must run at all (CC=false, or none installed): checked first, for a clear reason.
  const cc = (process.env.CC || 'cc').trim().split(/\s+/);
  const probe = spawnSync(cc[0], [...cc.slice(1), '--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    const why = probe.error ? probe.error.code ?? probe.error.message : `exit ${probe.status}`;
    skip(`no working C compiler (\`${cc.join(' ')} --version\`: ${why})`);
  }

  const run = spawnSync(process.execPath, [nodeGyp, 'rebuild', '--release', '--directory', dir, `--nodedir=${nodedir}`, '--jobs', 'max'], {
    encoding: 'utf8',
    env: { ...process.env, npm_config_nodedir: nodedir },
    maxBuffer: 64 * 2 ** 20,
    timeout: 10 * 60 * 1000,
  });
  const log = `${prebuiltLog && `${prebuiltLog}; built from source\n`}${run.stdout ?? ''}${run.stderr ?? ''}`;
  const addon = path.join(buildDir, 'Release/hpair_native.node');
  if (run.error || run.status !== 0 || !existsSync(addon)) {
    const lines = log.split('\n');
    const firstError =
      (lines.some((line) => line.startsWith('gyp ERR! find Python')) ? 'node-gyp found no usable Python' : undefined) ??
      lines.find((line) => /\berror\b/i.test(line) && !/^gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(line));
    const why = run.error ? (run.error.code ?? run.error.message) : `exit ${run.status}`;
    skip(oneLine(`node-gyp failed (${why})${firstError ? `: ${firstError}` : ''}; see ${path.join(relative, 'build/build.log')}`), log);
  }
  finish({ built: true }, log);
} catch (error) {
  // Nothing above should throw, but the install must not fail whatever happens.
  try {
    skip(oneLine(`install script error: ${error instanceof Error ? error.message : String(error)}`));
  } catch {
    process.exit(0);
  }
}
