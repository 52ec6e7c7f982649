// H in blocks, out of core: the plan, the budget, the journal, the files, and the one-machine driver.
// The cluster driver (BullMQ) builds on these same pieces: a block is the unit of work, writes are idempotent,
// and the journal (or a queue's completion count) says which blocks are in.
export { planBlocks, chooseBlockSize, chooseJobShape, blockMemory, jobMemory, jobBuffers, blockPairs, kernelTile, parseByteSize, formatBytes, READ_STAGE_BYTES, MAX_WORKER_VIEW_BYTES } from './plan.js';
export type { Block, BlockPlan, BlockCostOptions, BlockMemory, JobBuffer, JobShape } from './plan.js';
export { openJournal, readJournalFingerprint, journalPath, fingerprintDifference, jobFingerprint } from './journal.js';
export type { Journal, JobFingerprint, InputStamp } from './journal.js';
export { computeToNpy, partialPath } from './compute.js';
export { checkSpace, lockOutput, lockPath, releaseHeldLocksSync, LOCK_HEARTBEAT_MS, LOCK_STALE_MS } from './output-guard.js';
export type { OutputLock } from './output-guard.js';
export type { BlockPool, ComputeToNpyOptions, OutOfCoreProgress, OutOfCoreSummary } from './compute.js';
