// `hpair verify H.npy`: checks an output written block by block (out of core or by the cluster) against the
// manifest written beside it when it was published. Exit 0 when every block matches; exit 2 naming the blocks
// that do not (IO_ERROR), or when the file or its manifest cannot be read or do not belong together.
import { parseArgs } from 'node:util';
import { HpairError } from '../shared/errors.js';
import { verifyOutput } from './integrity.js';

export async function verifyCommand(args: string[]): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { json: { type: 'boolean' } }, strict: true, allowPositionals: true });
  } catch (error) {
    throw new HpairError('INVALID_ARGUMENT', `${(error as Error).message.split('\n')[0]} (see hpair --help)`);
  }
  if (parsed.positionals.length !== 1) throw new HpairError('INVALID_ARGUMENT', 'verify needs one file: hpair verify H.npy');
  const result = await verifyOutput(parsed.positionals[0]);
  if (result.bad.length > 0) throw new HpairError('IO_ERROR', result.message);
  if (parsed.values.json === true) {
    process.stdout.write(`${JSON.stringify({ ok: true, file: result.path, manifest: result.manifest, n: result.n, blocks: result.blocks })}\n`);
  } else {
    process.stdout.write(`${result.message}\n`);
  }
}
