// The CLI helps as a user expects: --help/-h on every command and subcommand (stdout, exit 0, every option
// the command accepts and none it refuses), -v/--version, `hpair help COMMAND`, and for a typo an exit 2 with
// the nearest name; `hpair doctor` and doctor() report what the library itself decides.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createPool, doctor, kernelStatus, nativeAddonFile, type DoctorReport } from 'hpair';
import { runCli, type Run } from './helpers/cli-run.js';

const test = suite('cli-help');
const cli = (args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> => runCli(args, { env, timeoutMs: 60_000 });
const root = fileURLToPath(new URL('../../', import.meta.url));


/** Each command, how its help is asked for, and the options a user finds in it. */
const commands: Array<[string[], string[]]> = [
  [['compute'], ['--expp', '--distance', '--out', '--max-memory', '--workers', '--kernel', '--accuracy', '--fifo-timeout', '--json']],
  [['demo'], ['--n', '--m', '--workers', '--kernel', '--accuracy', '--json']],
  [['doctor'], ['--json']],
  [['verify'], ['--json']],
  [['cluster', 'submit'], ['--redis', '--expp', '--distance', '--out', '--block', '--worker-memory', '--queue', '--kernel', '--accuracy', '--attempts', '--redis-timeout', '--connect-timeout', '--json']],
  [['cluster', 'worker'], ['--redis', '--queue', '--workers', '--kernel', '--lock-duration', '--stalled-interval', '--connect-timeout']],
];

for (const [command, flags] of commands) {
  const name = command.join(' ');
  test(`hpair ${name} --help, -h and hpair help ${name}: its usage and every option, exit 0`, async () => {
    const asked = [
      [...command, '--help'],
      [...command, '-h'],
      ['help', ...command],
      // --help wins over a mistake on the same line.
      [...command, '--bogus', '--help'],
    ];
    const runs = await Promise.all(asked.map((args) => cli(args)));
    for (const [i, run] of runs.entries()) {
      assert.is(run.code, 0, `${asked[i].join(' ')}: ${run.stderr}`);
      assert.is(run.stderr, '', asked[i].join(' '));
      assert.ok(run.stdout.startsWith(`usage: hpair ${name}`), `${asked[i].join(' ')}: ${run.stdout}`);
      assert.is(run.stdout, runs[0].stdout, 'every way of asking prints the same help');
    }
    const listed = new Set(runs[0].stdout.match(/--[a-z][a-z-]*/g));
    for (const flag of [...flags, '--help']) assert.ok(listed.has(flag), `${flag} is not in the help of ${name}`);
    for (const flag of listed) assert.ok([...flags, '--help'].includes(flag), `the help of ${name} lists ${flag}, which it does not take`);
  });
}

test('every option a help lists is one the command accepts (never "unknown option")', async () => {
  // Each run stops at a check before any work: a missing required option, or a bad --kernel/--workers value.
  const runs: Array<[string[], string]> = [];
  for (const [command, flags] of commands) {
    for (const flag of flags) {
      if (flag === '--redis') continue; // with only it, a cluster command would connect
      const value = flag === '--json' ? [] : [flag === '--kernel' ? 'no-such-kernel' : 'x'];
      const stop = command[0] === 'demo' ? (flag === '--workers' ? [] : ['--workers', 'none']) : [];
      runs.push([[...command, flag, ...value, ...stop], flag]);
    }
  }
  const results = await Promise.all(runs.map(([args]) => cli(args)));
  for (const [i, run] of results.entries()) {
    const args = runs[i][0].join(' ');
    assert.not.match(`${run.stdout}${run.stderr}`, /unknown option/i, `${args}: ${run.stderr}`);
  }
});

test('hpair --help, -h and help list every command; --version and -v print the version', async () => {
  const [long, short, word, version, v] = await Promise.all([cli(['--help']), cli(['-h']), cli(['help']), cli(['--version']), cli(['-v'])]);
  for (const run of [long, short, word]) {
    assert.is(run.code, 0, run.stderr);
    for (const command of ['compute', 'demo', 'doctor', 'cluster worker', 'cluster submit', '--version']) assert.ok(run.stdout.includes(`hpair ${command}`) || run.stdout.includes(command), command);
  }
  assert.is(short.stdout, long.stdout);
  const { version: expected } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
  assert.equal([version.code, version.stdout, v.code, v.stdout], [0, `${expected}\n`, 0, `${expected}\n`]);
});

const typos: Array<[string[], RegExp]> = [
  [['comptue'], /^hpair: unknown command 'comptue' \(did you mean compute\?\) \(see hpair --help\)\n$/],
  [['dotcor'], /unknown command 'dotcor' \(did you mean doctor\?\)/],
  [['--verison'], /unknown option '--verison' \(did you mean --version\?\)/],
  [['compute', '--wrokers', '2'], /^hpair: compute: unknown option '--wrokers' \(did you mean --workers\?\) \(see hpair compute --help\)\n$/],
  [['compute', '--max-mem', '1G'], /unknown option '--max-mem' \(did you mean --max-memory\?\)/],
  [['demo', '--kernal', 'js'], /demo: unknown option '--kernal' \(did you mean --kernel\?\)/],
  [['demo', '--jsno'], /unknown option '--jsno' \(did you mean --json\?\)/],
  [['doctor', '--jason'], /doctor: unknown option '--jason' \(did you mean --json\?\)/],
  [['verify', '--jsno', 'H.npy'], /^hpair: verify: unknown option '--jsno' \(did you mean --json\?\) \(see hpair verify --help\)\n$/],
  [['verify', 'H.npy', '--hlep'], /verify: unknown option '--hlep' \(did you mean --help\?\)/],
  [['cluster', 'sumbit'], /unknown cluster command 'sumbit' \(did you mean submit\?\)/],
  [['cluster', 'wroker'], /unknown cluster command 'wroker' \(did you mean worker\?\)/],
  [['cluster', 'submit', '--qeue', 'q'], /cluster submit: unknown option '--qeue' \(did you mean --queue\?\) \(see hpair cluster submit --help\)/],
  [['cluster', 'worker', '--lock-duraton', '5'], /unknown option '--lock-duraton' \(did you mean --lock-duration\?\)/],
];

test('a typo exits 2 with the nearest name; nothing far off is suggested', async () => {
  const runs = await Promise.all(typos.map(([args]) => cli(args)));
  for (const [i, run] of runs.entries()) {
    assert.is(run.code, 2, typos[i][0].join(' '));
    assert.is(run.stdout, '', typos[i][0].join(' '));
    assert.match(run.stderr, typos[i][1]);
  }
  const far = await Promise.all([cli(['frobnicate']), cli(['demo', '--zzzzzz']), cli(['cluster', 'banana'])]);
  for (const run of far) {
    assert.is(run.code, 2);
    assert.not.match(run.stderr, /did you mean/, run.stderr);
  }
  const json = await cli(['demo', '--kernal', 'js', '--json']);
  assert.is(json.code, 2);
  assert.equal(JSON.parse(json.stdout), { error: { code: 'USAGE', message: "demo: unknown option '--kernal' (did you mean --kernel?) (see hpair demo --help)" } });
});

test('hpair verify keeps its one positional argument: a missing, extra or option-like file name is named, never taken for help', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hpair-verify-'));
  try {
    const missing = join(dir, 'H.npy');
    const [none, two, file, dashed] = await Promise.all([
      cli(['verify']),
      cli(['verify', missing, missing]),
      cli(['verify', missing, '--json']),
      // After `--`, -h is a file name (and this one has no manifest), not a request for help.
      cli(['verify', '--', '-h']),
    ]);
    assert.equal([none.code, none.stdout], [2, '']);
    assert.match(none.stderr, /^hpair: verify: it needs one file: hpair verify H\.npy \(see hpair verify --help\)\n$/);
    assert.equal([two.code, two.stdout], [2, '']);
    assert.match(two.stderr, /verify: it checks one file, got 2/);
    assert.is(file.code, 2);
    assert.equal(JSON.parse(file.stdout).error.code, 'IO_ERROR');
    assert.match(JSON.parse(file.stdout).error.message, /H\.npy has no manifest/);
    assert.is(dashed.code, 2);
    assert.is(dashed.stdout, '');
    assert.match(dashed.stderr, /^hpair: -h has no manifest/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hpair doctor --json is doctor(): the kernels, the addon and auto as the library decides them', async () => {
  const run = await cli(['doctor', '--json']);
  assert.is(run.code, 0, run.stderr);
  const report = JSON.parse(run.stdout) as DoctorReport;
  const library = await doctor();
  assert.equal(report.kernels, kernelStatus());
  assert.equal(library.kernels, report.kernels);
  assert.equal(report.addon, JSON.parse(JSON.stringify(library.addon)));
  assert.is(report.addon.loaded, nativeAddonFile() !== undefined);
  if (report.addon.loaded) {
    assert.is(report.addon.file, nativeAddonFile());
    assert.ok(report.cpu.caches && report.cpu.caches.l1d > 0 && report.cpu.caches.l2 > 0, 'caches measured by the addon');
  } else assert.ok(report.addon.reason && !report.addon.reason.includes('\n'), report.addon.reason);
  const pool = createPool({ workers: 1 });
  try {
    assert.equal(report.auto, { kernel: pool.kernel, ...(pool.whyNotNative === undefined ? {} : { whyNotNative: pool.whyNotNative }) });
  } finally {
    await pool.close();
  }
  assert.is(report.node.version, process.version);
  // The FMA probe: measured by the addon when it has one, and said so when it has not.
  // Where a native path runs, the probe must have measured it; elsewhere doctor says why not.
  if (report.kernels.some((k) => k.kernel.startsWith('native') && k.supported)) {
    assert.ok(report.fmaPeak.measured, `fma peak not measured: ${report.fmaPeak.measured ? '' : report.fmaPeak.reason}`);
    assert.ok(report.fmaPeak.gflops > 0 && Number.isFinite(report.fmaPeak.gflops));
  } else assert.ok(!report.fmaPeak.measured && report.fmaPeak.reason.length > 0);

  const text = await cli(['doctor']);
  assert.is(text.code, 0, text.stderr);
  for (const k of report.kernels) assert.match(text.stdout, new RegExp(`^  ${k.supported ? 'yes' : 'no '}  ${k.kernel}`, 'm'));
  assert.match(text.stdout, /^addon {5}/m);
  assert.match(text.stdout, /^fma peak  /m);
});

test('hpair doctor names the real cause when the addon named by HPAIR_NATIVE_ADDON is missing or foreign', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hpair-doctor-'));
  try {
    const missing = join(dir, 'nowhere', 'hpair_native.node');
    let report = JSON.parse((await cli(['doctor', '--json'], { HPAIR_NATIVE_ADDON: missing })).stdout) as DoctorReport;
    assert.is(report.addon.loaded, false);
    assert.is(report.addon.reason, `native kernel not found at ${missing} (named by HPAIR_NATIVE_ADDON)`);
    assert.ok(!report.auto.kernel.startsWith('native'), report.auto.kernel);
    assert.is(report.auto.whyNotNative, report.addon.reason);
    assert.equal(report.fmaPeak, { measured: false, reason: 'no native addon loads here' });
    for (const k of report.kernels.filter((k) => k.kernel.startsWith('native'))) assert.is(k.reason, report.addon.reason);

    // Not an addon at all, and an ELF file for arm64: the load error, and the platform by name.
    const text = join(dir, 'text.node');
    writeFileSync(text, 'not a shared object');
    report = JSON.parse((await cli(['doctor', '--json'], { HPAIR_NATIVE_ADDON: text })).stdout) as DoctorReport;
    assert.match(report.addon.reason ?? '', `native kernel ${text} failed to load: `);
    const addon = nativeAddonFile();
    if (addon === undefined) {
      console.log('  (skipped: the foreign-ELF case: no native addon loads here to patch)');
      return;
    }
    const arm = join(dir, 'arm64.node');
    const bytes = readFileSync(addon);
    bytes.writeUInt16LE(183, 18);
    writeFileSync(arm, bytes);
    report = JSON.parse((await cli(['doctor', '--json'], { HPAIR_NATIVE_ADDON: arm })).stdout) as DoctorReport;
    assert.match(report.addon.reason ?? '', `native kernel ${arm} is for another platform: it is for linux-arm64, this is linux-x64`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
