// `npm test`'s runner: uvu's own CLI (same file pattern, same output), then the suite-level guard. uvu sets
// process.exitCode when its last suite is done and leaves the process to end by itself, so a child process or
// a server a failing test left behind kept `npm test` waiting for ever. Here, once uvu is done, whatever is
// still running is named, stopped, and the process exits with uvu's code.
//   node dist/test/run.js [pattern]          (default: every *.test.js beside this file)
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { skips, stopEverything } from './helpers/children.js';

// Imported at run time, never bundled: the suites import 'uvu' from node_modules, and uvu/run must drive that
// same module instance.
const external = (name: string): Promise<unknown> => import(name);
type Suite = { name: string; file: string };
const { parse } = (await external('uvu/parse')) as { parse(dir: string, pattern: string, options: { cwd: string }): Promise<{ suites: Suite[] }> };
const { run } = (await external('uvu/run')) as { run(suites: Suite[], options: { bail?: boolean }): Promise<void> };

const dir = dirname(fileURLToPath(import.meta.url));
const pattern = process.argv[2] ?? '\\.test\\.js$';
const { suites } = await parse(dir, pattern, { cwd: process.cwd() });
try {
  await run(suites, {});
} catch (error) {
  console.error(error instanceof Error ? error.stack : String(error));
  process.exitCode = 1;
}

const skipped = skips();
if (skipped.length > 0) {
  console.log(`  Not run here: ${skipped.length}`);
  for (const line of skipped) console.log(`    skipped: ${line}`);
}
const left = stopEverything();
if (left.length > 0) {
  console.log(`\n  test guard: ${left.length} process(es) were still running after the last suite; stopped:`);
  for (const line of left) console.log(`    ${line}`);
}
process.exit(process.exitCode ?? 0);
