// hpair/cluster: H computed by many processes or machines over a BullMQ queue on Redis. BullMQ and ioredis are
// optional peer dependencies, loaded only when one of these functions is called (npm install bullmq ioredis).
export { createClusterWorker, DEFAULT_LOCK_DURATION_MS, DEFAULT_STALLED_INTERVAL_MS, DEFAULT_MAX_STALLED_COUNT } from './worker.js';
export type { ClusterWorker, ClusterWorkerOptions, ClusterBlockEvent } from './worker.js';
export { submitToCluster, DEFAULT_ATTEMPTS, DEFAULT_BACKOFF_MS, DEFAULT_REDIS_TIMEOUT_MS } from './submit.js';
export type { SubmitOptions, ClusterProgress, ClusterSummary } from './submit.js';
export { chooseClusterBlockSize } from './block-size.js';
export type { ClusterBlockSize, ClusterBlockSizeInput } from './block-size.js';
export { connectRedis, parseRedisUrl } from './redis.js';
export type { ConnectOptions } from './redis.js';
export { DEFAULT_QUEUE, jobId } from './jobs.js';
export type { BlockJobData, BlockJobResult } from './jobs.js';
