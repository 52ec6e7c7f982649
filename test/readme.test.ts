// Every block marked <!-- example: name --> in README.md and docs/*.md runs as written: JavaScript with Node
// (imports of 'hpair' resolve to this package), shell with bash in a scratch directory where `hpair` is this
// package's CLI. Each line a block says it `prints:` must appear in its output.
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { skip, track } from './helpers/children.js';
import { cliPath } from './helpers/support.js';
import { testRedisUrl } from './helpers/redis.js';

const test = suite('readme');
const root = fileURLToPath(new URL('../../', import.meta.url));
const pages = ['README.md', ...readdirSync(join(root, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)];
const text = new Map(pages.map((page) => [page, readFileSync(join(root, page), 'utf8')]));
const examples = pages.flatMap((page) =>
  [...text.get(page)!.matchAll(/<!-- example: ([\w-]+) -->\s*```(js|sh)\n([\s\S]*?)```/g)].map(([, name, language, code]) => ({ page, name, language, code })),
);
const dir = fileURLToPath(new URL('./readme-examples/', import.meta.url));
mkdirSync(dir, { recursive: true });

// `hpair` on the PATH of shell examples: this package's CLI, as `npm install hpair` would put it.
const bin = mkdtempSync(join(tmpdir(), 'hpair-docs-bin-'));
writeFileSync(join(bin, 'hpair'), `#!/bin/sh\nexec "${process.execPath}" "${cliPath}" "$@"\n`);
chmodSync(join(bin, 'hpair'), 0o755);
process.once('exit', () => rmSync(bin, { recursive: true, force: true }));

// Examples of hpair/cluster get a Redis: HPAIR_TEST_REDIS, or one started for the suite (helpers/redis.ts).
const needsRedis = (code: string): boolean => code.includes("'hpair/cluster'");
const redis = examples.some(({ code }) => needsRedis(code)) ? await testRedisUrl() : undefined;
// A probe, not a test: bounded by its own timeout.
const numpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore', timeout: 30_000 }).status === 0;

test('the README and every docs page with code have runnable examples', () => {
  assert.ok(examples.some((example) => example.page === 'README.md'), 'README.md has no example');
  const names = examples.map((example) => example.name);
  assert.equal(names, [...new Set(names)], 'example names are unique across pages');
});

/** Runs a command to its end (bounded), in a process the suite-level guard stops if the test does not. */
function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv }): Promise<{ code: number; stdout: string; stderr: string }> {
  // An example prints what a user's terminal-less run prints: uvu's own CLI sets FORCE_COLOR for its reporter, and a
  // child that inherited it would colour console.log's numbers.
  const env = { ...(options.env ?? process.env) };
  delete env.FORCE_COLOR;
  return new Promise((resolve) => {
    track(
      execFile(command, args, { ...options, env, timeout: 120_000, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (error, out, err) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout: out, stderr: err });
      }),
    );
  });
}

for (const { page, name, language, code } of examples) {
  const title = `${page} example '${name}' runs and prints what it says`;
  if (/\bpython3\b/.test(code) && !numpy) {
    skip('readme', title, 'python3 with numpy is not installed');
    continue;
  }
  if (needsRedis(code) && redis === undefined) {
    skip('readme', title, 'no Redis: no HPAIR_TEST_REDIS and no redis-server (apt-get install redis-server)');
    continue;
  }
  test(title, async () => {
    const expected = [...code.matchAll(/(?:\/\/|#) prints: (.*)/g)].map((m) => m[1]);
    let result: { code: number; stdout: string; stderr: string };
    if (language === 'js') {
      const file = `${dir}${name}.mjs`;
      writeFileSync(file, code);
      result = await run(process.execPath, [file], { env: { ...process.env, ...(redis === undefined ? {} : { REDIS_URL: redis }) } });
    } else {
      const scratch = mkdtempSync(join(tmpdir(), `hpair-docs-${name}-`));
      try {
        result = await run('bash', ['-euo', 'pipefail', '-c', code], { cwd: scratch, env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` } });
      } finally {
        rmSync(scratch, { recursive: true, force: true });
      }
    }
    assert.is(result.code, 0, `${result.stderr}\n${result.stdout}`);
    for (const line of expected) assert.ok(result.stdout.includes(line), `expected '${line}' in:\n${result.stdout}`);
  });
}

// A block marked <!-- excerpt: path --> quotes that file verbatim: its parts, split at lines '// …', appear in
// the file in this order.
const excerpts = pages.flatMap((page) => [...text.get(page)!.matchAll(/<!-- excerpt: ([\w./-]+) -->\s*```js\n([\s\S]*?)```/g)].map(([, path, code]) => ({ page, path, code })));

test('the docs quote examples/service.mjs exactly as it is', () => {
  assert.ok(excerpts.some(({ path }) => path === 'examples/service.mjs'), 'no excerpt of examples/service.mjs');
  for (const { page, path, code } of excerpts) {
    const source = readFileSync(join(root, path), 'utf8');
    let at = 0;
    for (const part of code.split(/^\/\/ …\n/m)) {
      const found = source.indexOf(part, at);
      assert.ok(found >= 0, `${page} and ${path} differ:\n${part}`);
      at = found + part.length;
    }
  }
});

/** GitHub's anchors of a Markdown page: each heading outside code, lowercased, punctuation dropped, spaces to '-'. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)) {
    const slug = heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/ /g, '-');
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    found.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return found;
}

// Relative links between the pages point at files that exist, and their #anchors at headings of those pages.
test('links between README.md and docs/ resolve, anchors included', () => {
  for (const page of pages) {
    for (const [, target, anchor] of text.get(page)!.matchAll(/\]\(((?!https?:)[^)#\s]*)(?:#([^)\s]*))?\)/g)) {
      const from = page.includes('/') ? join(root, 'docs') : root;
      const path = target === '' ? join(root, page) : join(from, target);
      let body: string | undefined;
      try {
        body = readFileSync(path, 'utf8');
      } catch {
        body = undefined;
      }
      assert.ok(body !== undefined, `${page} links to ${target}, which does not exist`);
      if (anchor !== undefined && path.endsWith('.md')) {
        assert.ok(anchors(body!).has(anchor), `${page} links to ${target}#${anchor}, a heading ${target || page} does not have`);
      }
    }
  }
});

// docs/api.md names every export of the package's main entry (values and types), so none goes undocumented.
test('docs/api.md names every export of hpair', () => {
  const index = readFileSync(join(root, 'index.ts'), 'utf8');
  const names = [...index.matchAll(/^export (?:type )?\{([^}]*)\}/gm)].flatMap(([, list]) =>
    list!.split(',').map((name) => name.trim().replace(/^type /, '')).filter((name) => name !== ''),
  );
  assert.ok(names.length > 50, `read only ${names.length} exports from index.ts`);
  const api = text.get('docs/api.md')!;
  const missing = names.filter((name) => !new RegExp(`\`(?:await |new )?${name}\\b`).test(api));
  assert.equal(missing, [], `docs/api.md does not name: ${missing.join(', ')}`);
});

// docs/errors.md has one row for every code of HpairErrorCode (shared/errors.ts), and no row twice.
test('docs/errors.md has one row per error code', () => {
  const source = readFileSync(join(root, 'shared/errors.ts'), 'utf8');
  const union = /export type HpairErrorCode =([\s\S]*?');\n/.exec(source)![1]!;
  const codes = [...union.matchAll(/\| '([A-Z_]+)'/g)].map(([, code]) => code!);
  assert.ok(codes.length > 10, `read only ${codes.length} codes from shared/errors.ts`);
  const rows = [...text.get('docs/errors.md')!.matchAll(/^\| `([A-Z_]+)` \|/gm)].map(([, code]) => code!);
  assert.equal([...rows].sort(), [...codes].sort(), 'docs/errors.md rows against HpairErrorCode');
});

test.run();
