// What the bench's machine probes (the FMA peak, bench/peak.ts; the write bandwidth, bench/bandwidth.ts) share: a
// probe runs in several worker threads whose timed runs start at the same moment, because threads that share a
// power budget, a host core or a memory bus are slower together than one alone; and each measurement is repeated
// with the best kept, because other load only ever lowers a machine limit, never raises it.
//
// A probe worker answers each message with { ready: true } once warmed up, waits on the message's `flag` (an
// Int32Array over a 4-byte SharedArrayBuffer) until it turns 1, then answers { rate } (or { error } at any point).
import { Worker } from 'node:worker_threads';

type WorkerReply = { ready: true } | { rate: number } | { error: string };

function nextReply(worker: Worker): Promise<WorkerReply> {
  return new Promise((resolve, reject) => {
    const onMessage = (reply: WorkerReply): void => {
      worker.off('error', onError);
      resolve(reply);
    };
    const onError = (error: Error): void => {
      worker.off('message', onMessage);
      reject(error);
    };
    worker.once('message', onMessage);
    worker.once('error', onError);
  });
}

async function expect<K extends 'ready' | 'rate'>(worker: Worker, key: K, probe: string): Promise<Extract<WorkerReply, Record<K, unknown>>> {
  const reply = await nextReply(worker);
  if ('error' in reply) throw new Error(`${probe}: ${reply.error}`);
  if (!(key in reply)) throw new Error(`${probe}: expected '${key}', got ${JSON.stringify(reply)}`);
  return reply as Extract<WorkerReply, Record<K, unknown>>;
}

/** One concurrent run: worker w gets message(w) plus the start flag; every worker's rate, all timed runs started together. */
async function concurrentRun(workers: readonly Worker[], message: (w: number) => object, probe: string): Promise<number[]> {
  const flag = new SharedArrayBuffer(4);
  const ready = workers.map((worker) => expect(worker, 'ready', probe));
  workers.forEach((worker, w) => worker.postMessage({ ...message(w), flag }));
  await Promise.all(ready);
  const rates = workers.map((worker) => expect(worker, 'rate', probe));
  const go = new Int32Array(flag);
  Atomics.store(go, 0, 1);
  Atomics.notify(go, 0);
  return (await Promise.all(rates)).map((reply) => reply.rate);
}

/** A probe's result on one thread count: the best repetition's per-thread rates and sum, and every repetition's sum. */
export interface BestOfRuns {
  total: number;
  perThread: number[];
  repetitions: number[];
}

/** Probe workers running `source` (CommonJS, evaluated; workerData.addon is the native addon's path), for `use`. */
export async function withProbeWorkers<T>(source: string, count: number, addon: string, use: (probe: (threads: number, repetitions: number, message: (w: number) => object) => Promise<BestOfRuns>) => Promise<T>, name: string): Promise<T> {
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < count; i++) workers.push(new Worker(source, { eval: true, workerData: { addon } }));
    return await use(async (threads, repetitions, message) => {
      const sums: number[] = [];
      let best: number[] = [];
      for (let r = 0; r < repetitions; r++) {
        const rates = await concurrentRun(workers.slice(0, threads), message, name);
        const sum = rates.reduce((a, b) => a + b, 0);
        sums.push(sum);
        if (best.length === 0 || sum > best.reduce((a, b) => a + b, 0)) best = rates;
      }
      return { total: best.reduce((a, b) => a + b, 0), perThread: best, repetitions: sums };
    });
  } finally {
    await Promise.all(workers.map((worker) => worker.terminate()));
  }
}
