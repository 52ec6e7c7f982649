// `hpair cluster worker` and `hpair cluster submit`: the CLI over createClusterWorker and submitToCluster.
// Loaded by cli/main.ts only for `hpair cluster …`, so the other commands never load BullMQ.
import { didYouMean, kernelChoices, parseCommand, type OptionSpec } from './help.js';
import { SIGNAL_EXIT_CODES, stopOnSignal } from './signals.js';
import { formatBytes, parseByteSize } from '../blocks/index.js';
import type { Accuracy, KernelChoice } from '../kernel/kernel-names.js';
import { HpairError, isHpairError } from '../shared/errors.js';
import type { PoolOptions } from '../workers/options.js';
import { DEFAULT_QUEUE } from '../cluster/jobs.js';
import { DEFAULT_CONNECT_TIMEOUT_MS } from '../cluster/redis.js';
import { DEFAULT_ATTEMPTS, DEFAULT_REDIS_TIMEOUT_MS, submitToCluster, type ClusterProgress, type ClusterSummary } from '../cluster/submit.js';
import { createClusterWorker, DEFAULT_LOCK_DURATION_MS, DEFAULT_STALLED_INTERVAL_MS } from '../cluster/worker.js';

export const CLUSTER_USAGE = `  hpair cluster worker --redis URL [--workers W] [--queue NAME] [--kernel K] [--lock-duration MS] [--stalled-interval MS]
    takes block jobs from the queue until SIGINT/SIGTERM (the running block is given back to the queue)
  hpair cluster submit --redis URL --expp E.npy --distance D.npy --out H.npy [--block B] [--worker-memory BYTES]
                       [--queue NAME] [--kernel K] [--accuracy A] [--attempts N] [--redis-timeout S] [--json]
    one job per block of H; the files must be at the same paths on every worker; resumable; Ctrl-C cancels
  URL: redis://HOST[:PORT][/DB]; NAME defaults to '${DEFAULT_QUEUE}'`;

type Values = Record<string, string | boolean | undefined>;

const KERNEL = `  --kernel K               ${kernelChoices(27)}`;

const HELP: Record<'worker' | 'submit', string> = {
  worker: `usage: hpair cluster worker --redis URL [options]
Takes block jobs from the queue and computes them until SIGINT/SIGTERM (the running block is given back).
  --redis URL              redis://HOST[:PORT][/DB]
  --queue NAME             default '${DEFAULT_QUEUE}'
  --workers W              threads of this worker's pool (default: the CPUs available)
${KERNEL}
  --lock-duration MS       how long a block stays claimed without a heartbeat; default ${DEFAULT_LOCK_DURATION_MS}
  --stalled-interval MS    how often stalled blocks are looked for; default ${DEFAULT_STALLED_INTERVAL_MS}
  --connect-timeout MS     give up on the first connection after this long; default ${DEFAULT_CONNECT_TIMEOUT_MS}
  -h, --help               this help`,
  submit: `usage: hpair cluster submit --redis URL --expp E.npy --distance D.npy --out H.npy [options]
Queues one job per block of H and waits for them; the files must be at the same paths on every worker.
Resumable (blocks already written are journaled); Ctrl-C cancels.
  --redis URL              redis://HOST[:PORT][/DB]
  --expp E.npy, --distance D.npy, --out H.npy   .npy files on storage every worker sees
  --block B                block edge (default: chosen from the queue's overhead per block)
  --worker-memory BYTES    each worker's memory budget for a block (e.g. 512M); default 1G
  --queue NAME             default '${DEFAULT_QUEUE}'
${KERNEL}
  --accuracy A             default | compensated (each entry as if in twice the working precision; not with js)
  --attempts N             tries per block; default ${DEFAULT_ATTEMPTS}
  --redis-timeout S        give up when Redis stays unreachable this long mid-run; default ${DEFAULT_REDIS_TIMEOUT_MS / 1000}
  --connect-timeout MS     give up on the first connection after this long; default ${DEFAULT_CONNECT_TIMEOUT_MS}
  --json                   one JSON line for the summary, and for an error
  -h, --help               this help`,
};

/** The subcommand's options, or undefined when it printed its help (exit 0). */
function options(command: 'worker' | 'submit', args: string[], spec: OptionSpec): Values | undefined {
  return parseCommand(args, { command: `cluster ${command}`, help: HELP[command], options: spec }, (message) => new HpairError('INVALID_ARGUMENT', message));
}

function integer(values: Values, name: string): number | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < 1) {
    throw new HpairError('INVALID_ARGUMENT', `--${name} must be a positive integer, got '${String(value)}'`);
  }
  return Number(value);
}

function required(values: Values, name: string, command: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new HpairError('INVALID_ARGUMENT', `cluster ${command} needs --${name} (see hpair --help)`);
  return value;
}

/** `hpair cluster <worker|submit> …` */
export async function clusterCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'worker') return worker(rest);
  if (sub === 'submit') return submit(rest);
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(`usage:\n${CLUSTER_USAGE}\n  hpair cluster worker --help | hpair cluster submit --help   one command's options\n`);
    if (sub === undefined) process.exitCode = 2;
    return;
  }
  throw new HpairError('INVALID_ARGUMENT', `unknown cluster command '${sub}'${didYouMean(sub, ['worker', 'submit']) || ' (worker or submit)'} (see hpair cluster --help)`);
}

const write = (text: string): void => void process.stdout.write(`${text}\n`);
const warn = (text: string): void => void process.stderr.write(`hpair: ${text}\n`);

async function worker(args: string[]): Promise<void> {
  const values = options('worker', args, {
    redis: { type: 'string' },
    workers: { type: 'string' },
    queue: { type: 'string' },
    kernel: { type: 'string' },
    'lock-duration': { type: 'string' },
    'stalled-interval': { type: 'string' },
    'connect-timeout': { type: 'string' },
  });
  if (values === undefined) return;
  const redis = required(values, 'redis', 'worker');
  const poolOptions: PoolOptions = {};
  const threads = integer(values, 'workers');
  if (threads !== undefined) poolOptions.workers = threads;
  if (typeof values.kernel === 'string') poolOptions.kernel = values.kernel as KernelChoice;
  const queue = typeof values.queue === 'string' ? values.queue : DEFAULT_QUEUE;
  let lost = false;
  const started = performance.now();
  const clusterWorker = await createClusterWorker({
    connection: redis,
    queue,
    poolOptions,
    lockDuration: integer(values, 'lock-duration') ?? DEFAULT_LOCK_DURATION_MS,
    stalledInterval: integer(values, 'stalled-interval') ?? DEFAULT_STALLED_INTERVAL_MS,
    connectTimeoutMs: integer(values, 'connect-timeout') ?? DEFAULT_CONNECT_TIMEOUT_MS,
    onBlock(event) {
      const { block } = event;
      const where = `block ${block.id} [${block.rows[0]}, ${block.rows[1]})×[${block.cols[0]}, ${block.cols[1]})`;
      if (event.outcome === 'done') {
        const rate = (event.flops ?? 0) / Math.max(1e-9, event.compute ?? 0) / 1e9;
        write(`${where}: read ${event.read?.toFixed(3)} s, compute ${event.compute?.toFixed(3)} s (${rate.toFixed(1)} GFLOP/s), write ${event.write?.toFixed(3)} s`);
      } else if (event.outcome === 'returned') {
        write(`${where}: given back to the queue`);
      } else if (event.outcome === 'refused') {
        warn(`refusing run ${event.run ?? '?'}: ${event.error?.message ?? ''}; its blocks are left to the other workers`);
      } else {
        warn(`${where} failed: ${event.error?.message.replace(/\s*\n\s*/g, ' ')}`);
      }
    },
    onError(error, kind) {
      if (kind === 'queue') return warn(error.message.replace(/\s*\n\s*/g, ' '));
      if (lost) return; // one line per outage, not one per retry
      lost = true;
      warn(`lost Redis (${error.message.replace(/\s*\n\s*/g, ' ')}); reconnecting`);
    },
    onReconnect() {
      if (lost) write(`worker: Redis is back`);
      lost = false;
    },
  });
  await clusterWorker.ready();
  write(`worker ${clusterWorker.name}: waiting for blocks on queue '${queue}' (${clusterWorker.threads} threads, ready in ${((performance.now() - started) / 1000).toFixed(2)} s)`);

  await new Promise<void>((resolveStop) => {
    // A second signal ends the process at once.
    stopOnSignal((name) => {
      write(`worker ${clusterWorker.name}: ${name}: giving back the running block and stopping`);
      clusterWorker.close({ giveBack: true }).then(resolveStop, (error: unknown) => {
        warn(`closing: ${(error as Error).message}`);
        resolveStop();
      });
    });
  });
  write(`worker ${clusterWorker.name}: stopped after ${clusterWorker.blocksDone} blocks`);
}

async function submit(args: string[]): Promise<void> {
  const values = options('submit', args, {
    redis: { type: 'string' },
    expp: { type: 'string' },
    distance: { type: 'string' },
    out: { type: 'string' },
    block: { type: 'string' },
    'worker-memory': { type: 'string' },
    queue: { type: 'string' },
    kernel: { type: 'string' },
    accuracy: { type: 'string' },
    attempts: { type: 'string' },
    'redis-timeout': { type: 'string' },
    'connect-timeout': { type: 'string' },
    json: { type: 'boolean' },
  });
  if (values === undefined) return;
  const redis = required(values, 'redis', 'submit');
  const [expp, distance, out] = ['expp', 'distance', 'out'].map((name) => required(values, name, 'submit'));
  const json = values.json === true;
  const workerMemory = typeof values['worker-memory'] === 'string' ? parseByteSize(values['worker-memory']) : undefined;
  const controller = new AbortController();
  let signalName: 'SIGINT' | 'SIGTERM' | undefined;
  const removeSignalHandlers = stopOnSignal((name) => {
    signalName = name;
    controller.abort(new Error(name));
  });
  const tty = process.stderr.isTTY === true && !json;
  let lastTenth = -1;
  let announced = false;
  const refusals = new Set<string>();
  const onProgress = (p: ClusterProgress): void => {
    for (const { worker: name, reason } of p.refused) {
      if (refusals.has(name)) continue;
      refusals.add(name);
      if (tty) process.stderr.write('\r\x1b[2K');
      warn(`worker ${name} refused this run: ${reason}`);
    }
    if (!announced && !json) {
      announced = true;
      write(`submitted ${p.blocks - p.done} of ${p.blocks} blocks${p.skipped > 0 ? ` (${p.skipped} already in the journal)` : ''}`);
    }
    if (json) return;
    const percent = p.blocks === 0 ? 100 : (100 * p.done) / p.blocks;
    const line = `${p.done}/${p.blocks} blocks (${percent.toFixed(0)}%), ${p.workers} workers seen, ${p.retries} retries, ${(p.elapsedMs / 1000).toFixed(1)} s`;
    if (tty) process.stderr.write(`\r\x1b[2K  ${line}`);
    else if (Math.floor(percent / 10) > lastTenth) {
      lastTenth = Math.floor(percent / 10);
      write(`  ${line}`);
    }
  };
  let summary: ClusterSummary;
  try {
    summary = await submitToCluster({
      connection: redis,
      queue: typeof values.queue === 'string' ? values.queue : undefined,
      expp,
      distance,
      out,
      blockSize: integer(values, 'block'),
      workerMemory,
      kernel: typeof values.kernel === 'string' ? (values.kernel as KernelChoice) : undefined,
      accuracy: typeof values.accuracy === 'string' ? (values.accuracy as Accuracy) : undefined,
      attempts: integer(values, 'attempts') ?? DEFAULT_ATTEMPTS,
      redisTimeoutMs: (integer(values, 'redis-timeout') ?? DEFAULT_REDIS_TIMEOUT_MS / 1000) * 1000,
      connectTimeoutMs: integer(values, 'connect-timeout'),
      signal: controller.signal,
      onProgress,
    });
  } catch (error) {
    if (tty) process.stderr.write('\r\x1b[2K');
    if (isHpairError(error) && error.code === 'ABORTED' && signalName !== undefined) {
      warn(error.message);
      process.exitCode = SIGNAL_EXIT_CODES[signalName];
      return;
    }
    throw error;
  } finally {
    removeSignalHandlers();
  }
  if (tty) process.stderr.write('\r\x1b[2K');
  for (const { worker: name, reason } of summary.refused) if (!refusals.has(name)) warn(`worker ${name} refused this run: ${reason}`);
  if (json) {
    write(JSON.stringify(summary));
    return;
  }
  const s = summary;
  const c = s.blockChoice;
  const choice = c === undefined ? '' : ` (${c.why}; overhead ≈ ${(c.overhead * 1000).toFixed(1)} ms a block at ${(c.rate / 1e9).toFixed(1)} GFLOP/s a worker${c.rateMeasured ? ', measured' : ', assumed'})`;
  write(
    `wrote ${s.out}\n` +
      `  size      N = ${s.N}, M = ${s.M}  →  H is ${s.n}×${s.n} (${formatBytes(16 * s.n * s.n)})\n` +
      `  blocks    ${s.blocks} of ${s.blockSize}×${s.blockSize}${choice}: ${s.computed} computed, ${s.skipped} from the journal\n` +
      `  workers   ${s.workers.length} seen${s.workers.length > 0 ? `: ${s.workers.join(', ')}` : ''}\n` +
      `  retries   ${s.retries}${s.requeued > 0 ? `, ${s.requeued} blocks requeued after Redis lost them` : ''}\n` +
      (s.recomputed.length > 0 ? `  checksums ${s.recomputed.length} blocks did not match as written and were computed again: ${s.recomputed.join(', ')}\n` : '') +
      `  kernel    ${s.kernel}\n` +
      `  time      ${s.seconds.toFixed(3)} s  (${s.gflops.toFixed(2)} GFLOP/s useful; workers read ${s.workerSeconds.read.toFixed(2)} s, computed ${s.workerSeconds.compute.toFixed(2)} s, wrote ${s.workerSeconds.write.toFixed(2)} s)`,
  );
}
