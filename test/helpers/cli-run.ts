// The `hpair` command as a child process, for the tests that drive it: one runner, tracked by the suite guard
// (children.ts), so a run that hangs is killed and fails its own test instead of holding the suite.
import { spawn } from 'node:child_process';
import * as assert from 'uvu/assert';
import { track } from './children.js';
import { cliPath } from './support.js';

export interface Run {
  /** The exit code; −1 when the process was ended by a signal (killed past its time, or by a test). */
  code: number;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Extra environment variables for the child. */
  readonly env?: NodeJS.ProcessEnv;
  /** Killed past this (ms): a hang fails the test that started it. @default 120000 */
  readonly timeoutMs?: number;
}

/** Starts `hpair ARGS`; `stop(signal)` signals it, `done` resolves once it has exited. */
export function startCli(args: readonly string[], options: CliOptions = {}): { done: Promise<Run>; stop: (signal: NodeJS.Signals) => void } {
  const child = track(spawn(process.execPath, [cliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } }));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
  const done = new Promise<Run>((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    }),
  );
  return { done, stop: (signal) => child.kill(signal) };
}

/** Runs `hpair ARGS` to its end. */
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<Run> {
  return startCli(args, options).done;
}

/** Waits (polling every 20 ms) until `condition` holds; fails the test naming `what` past `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.unreachable(`never saw ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
