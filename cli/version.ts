import { readFileSync } from 'node:fs';

/** The package's version, read at run time from the package.json beside dist/ (where npm installs it). */
export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name?: unknown; version?: unknown };
  if (manifest.name !== 'hpair' || typeof manifest.version !== 'string') throw new Error('cannot find hpair\'s package.json beside dist/');
  return manifest.version;
}
