// Every README block marked <!-- example --> runs as written (imports of 'hpair' resolve to this package).
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';

const test = suite('readme');
const readme = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');
const examples = [...readme.matchAll(/<!-- example: ([\w-]+) -->\s*```js\n([\s\S]*?)```/g)];
const dir = fileURLToPath(new URL('./readme-examples/', import.meta.url));
mkdirSync(dir, { recursive: true });

test('the README has runnable examples', () => {
  assert.ok(examples.length >= 1);
});

for (const [, name, code] of examples) {
  test(`README example '${name}' runs and prints what it says`, async () => {
    const file = `${dir}${name}.mjs`;
    writeFileSync(file, code);
    const expected = [...code.matchAll(/\/\/ prints: (.*)/g)].map((m) => m[1]);
    const { code: exit, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [file], { timeout: 120_000 }, (error, out, err) => resolve({ code: error === null ? 0 : 1, stdout: out, stderr: err }));
    });
    assert.is(exit, 0, stderr);
    for (const line of expected) assert.ok(stdout.includes(line), `expected '${line}' in:\n${stdout}`);
  });
}

// A block marked <!-- excerpt: path --> quotes that file verbatim: its parts, split at lines '// …', appear in
// the file in this order.
const excerpts = [...readme.matchAll(/<!-- excerpt: ([\w./-]+) -->\s*```js\n([\s\S]*?)```/g)];

test('the README quotes examples/service.mjs exactly as it is', () => {
  assert.ok(excerpts.some(([, path]) => path === 'examples/service.mjs'), 'no excerpt of examples/service.mjs');
  for (const [, path, code] of excerpts) {
    const source = readFileSync(fileURLToPath(new URL(`../../${path}`, import.meta.url)), 'utf8');
    let at = 0;
    for (const part of code.split(/^\/\/ …\n/m)) {
      const found = source.indexOf(part, at);
      assert.ok(found >= 0, `README and ${path} differ:\n${part}`);
      at = found + part.length;
    }
  }
});

test.run();
