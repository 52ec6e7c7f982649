// BullMQ and ioredis are optional peer dependencies: only the cluster commands load them, by dynamic
// import, so that `import 'hpair'` never does and a user who never clusters never installs them.
import { HpairError } from '../shared/errors.js';

export type BullMQ = typeof import('bullmq');
export type IORedisModule = typeof import('ioredis');
/** The ioredis client class (a value of this type is an instance). */
export type RedisClient = import('ioredis').Redis;

let loaded: Promise<{ bullmq: BullMQ; ioredis: IORedisModule }> | undefined;

/** Loads bullmq and ioredis once; a clear INVALID_ARGUMENT error when either is not installed. */
export function loadQueueModules(): Promise<{ bullmq: BullMQ; ioredis: IORedisModule }> {
  loaded ??= (async () => {
    const load = async <T>(name: string, importer: () => Promise<T>): Promise<T> => {
      try {
        return await importer();
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ERR_MODULE_NOT_FOUND' && code !== 'MODULE_NOT_FOUND') throw error;
        throw new HpairError(
          'INVALID_ARGUMENT',
          `hpair cluster needs the optional peer dependency '${name}', which is not installed: npm install bullmq ioredis`,
          { cause: error },
        );
      }
    };
    const bullmq = await load('bullmq', () => import('bullmq'));
    const ioredis = await load('ioredis', () => import('ioredis'));
    return { bullmq, ioredis };
  })();
  loaded.catch(() => (loaded = undefined));
  return loaded;
}
