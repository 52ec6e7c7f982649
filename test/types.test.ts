// The published typings as a user's compiler sees them: see test/consumer/main.ts.
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('types');

test('a strict TypeScript consumer without the DOM lib compiles against dist/types', async () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const project = fileURLToPath(new URL('../../test/consumer/tsconfig.json', import.meta.url));
  const { code, output } = await new Promise<{ code: number; output: string }>((resolve) => {
    execFile(process.execPath, [tsc, '-p', project], { timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error === null ? 0 : 1, output: stdout + stderr }),
    );
  });
  assert.is(code, 0, output);
});

test.run();
