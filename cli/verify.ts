// `hpair verify H.npy`: checks an output written block by block (out of core or by the cluster) against the
// manifest written beside it when it was published. Exit 0 when every block matches; exit 2 naming the blocks
// that do not (IO_ERROR), or when the file or its manifest cannot be read or do not belong together.
import { parseArgs } from 'node:util';
import { usage } from './errors.js';
import { didYouMean } from './help.js';
import { HpairError } from '../shared/errors.js';
import { verifyOutput } from '../blocks/integrity.js';

const HELP = `usage: hpair verify H.npy [options]
  Checks H.npy, written block by block (hpair compute out of core, or hpair cluster submit), against
  H.npy.manifest.json written beside it when it was published: its header, its size, and every block's
  bytes (mirror included) against the SHA-256 recorded as the block was computed.
  Exit 0: every block matches. Exit 2: the blocks that do not, named; or the file or its manifest
  cannot be read or do not belong together.

  --json            on success, one JSON object on stdout; on failure, the error as JSON
  -h, --help        this help`;

const OPTIONS = { json: { type: 'boolean' } } as const;

/** The command line's one positional argument and its options; undefined when it printed its help (exit 0). */
function parse(args: readonly string[]): { file: string; json: boolean } | undefined {
  // --help wins over anything else on the line, as on every other command; `--` ends the options, so a file
  // named -h can still be checked.
  const end = args.indexOf('--');
  if ((end < 0 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h')) {
    process.stdout.write(`${HELP}\n`);
    return undefined;
  }
  const fail = (message: string): Error => usage(`verify: ${message} (see hpair verify --help)`);
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], options: OPTIONS, strict: true, allowPositionals: true });
  } catch (error) {
    const message = (error as Error).message.split('\n')[0];
    const unknown = /^Unknown option '(-{1,2}[^']*)'/.exec(message)?.[1];
    if (unknown !== undefined) throw fail(`unknown option '${unknown}'${didYouMean(unknown.split('=')[0], ['--json', '--help'])}`);
    throw fail(message.replace(/\. To specify a positional argument.*$/, ''));
  }
  if (parsed.positionals.length !== 1) {
    throw fail(parsed.positionals.length === 0 ? 'it needs one file: hpair verify H.npy' : `it checks one file, got ${parsed.positionals.length}`);
  }
  return { file: parsed.positionals[0], json: parsed.values.json === true };
}

export async function verifyCommand(args: string[]): Promise<void> {
  const command = parse(args);
  if (command === undefined) return;
  const result = await verifyOutput(command.file);
  if (result.bad.length > 0) throw new HpairError('IO_ERROR', result.message);
  if (command.json) {
    process.stdout.write(`${JSON.stringify({ ok: true, file: result.path, manifest: result.manifest, n: result.n, blocks: result.blocks })}\n`);
  } else {
    process.stdout.write(`${result.message}\n`);
  }
}
