// The suite-level guard: every child process and server a test starts is registered here, and whatever is
// still running when the process ends (the last suite done, an uncaught error, a signal) is stopped. Each test
// still stops its own in a `finally`; this is what makes a failing test unable to keep `npm test` alive.
//
// esbuild bundles this module into every test file, so the registry lives on globalThis: one per process,
// whichever bundle registers.
import type { ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

interface Closable {
  close(): unknown;
  closeAllConnections?(): void;
}

interface Registry {
  readonly children: Set<ChildProcess>;
  /** Children meant to live until the process ends (a Redis the suites share): stopped, not reported. */
  readonly shared: Set<ChildProcess>;
  readonly servers: Set<Closable>;
  readonly skips: string[];
}

const KEY = Symbol.for('hpair.test.guard');
const registry: Registry = ((globalThis as Record<symbol, unknown>)[KEY] as Registry | undefined) ?? install();

function install(): Registry {
  const created: Registry = { children: new Set(), shared: new Set(), servers: new Set(), skips: [] };
  (globalThis as Record<symbol, unknown>)[KEY] = created;
  // 'exit' also runs after an uncaught exception; a kill is synchronous, so it completes here.
  process.on('exit', () => {
    stopEverything();
  });
  for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]] as const) {
    process.once(signal, () => {
      const left = stopEverything();
      if (left.length > 0) process.stderr.write(`test guard: ${signal}: stopped ${left.length} process(es) still running:\n${left.map((line) => `  ${line}`).join('\n')}\n`);
      process.exit(128 + number);
    });
  }
  return created;
}

/**
 * Registers a child process; it leaves the registry when it exits. Returns the child. `sharedUntilExit`: it is
 * meant to outlive every test (a server the suites share), so stopping it at the end is no leak to report.
 */
export function track<T extends ChildProcess>(child: T, sharedUntilExit = false): T {
  registry.children.add(child);
  if (sharedUntilExit) registry.shared.add(child);
  child.once('exit', () => {
    registry.children.delete(child);
    registry.shared.delete(child);
  });
  return child;
}

/** Registers a server (net, http) to close if a test leaves it open. Returns the server. */
export function trackServer<T extends Closable>(server: T): T {
  registry.servers.add(server);
  return server;
}

/** Forgets a server the test closed itself. */
export function untrackServer(server: Closable): void {
  registry.servers.delete(server);
}

/**
 * Declares a test that cannot run here: it is not registered, and the reason is printed at once and again in
 * the runner's summary, so a skip is never mistaken for a pass.
 */
export function skip(suite: string, name: string, reason: string): void {
  const line = `${suite}: ${name}: ${reason}`;
  registry.skips.push(line);
  console.log(`  skipped: ${line}`);
}

/**
 * `register` (a suite's `test`) where `runs` holds; elsewhere the test is not registered at all and is reported as
 * skipped with its reason (never passed by returning early, never left to uvu's silent `.skip`).
 */
export function testIf<F>(register: (name: string, fn: F) => void, suite: string, runs: boolean, reason: () => string): (name: string, fn: F) => void {
  return runs ? register : (name) => skip(suite, name, reason());
}

/** Every skip declared in this process so far. */
export function skips(): readonly string[] {
  return registry.skips;
}

/** Processes descended from `root` (Linux /proc; elsewhere none), each as "pid command line". */
export function descendants(root = process.pid): Array<{ pid: number; command: string }> {
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return [];
  }
  const parent = new Map<number, number>();
  for (const name of entries) {
    try {
      // The command name in field 2 may hold spaces and parentheses: the fields after it follow the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(name), Number(fields[1]));
    } catch {
      // The process ended while we looked.
    }
  }
  const found: Array<{ pid: number; command: string }> = [];
  const walk = (pid: number): void => {
    for (const [child, of] of parent) {
      if (of !== pid) continue;
      let command = '';
      try {
        command = readFileSync(`/proc/${child}/cmdline`, 'utf8').split('\0').join(' ').trim();
      } catch {
        command = '(ended)';
      }
      found.push({ pid: child, command });
      walk(child);
    }
  };
  walk(root);
  return found;
}

/**
 * Closes every registered server and kills every registered child and every descendant process still alive
 * (SIGKILL: a test's own finally already asked politely). Returns what was still running, one line each.
 */
export function stopEverything(): string[] {
  const left: string[] = [];
  for (const server of registry.servers) {
    server.closeAllConnections?.();
    try {
      server.close();
    } catch {
      // Already closed.
    }
  }
  registry.servers.clear();
  const quiet = new Set<number>();
  for (const child of registry.children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      if (registry.shared.has(child)) quiet.add(child.pid);
      else left.push(`${child.pid} ${child.spawnargs.join(' ')}`);
      child.kill('SIGKILL');
    }
  }
  registry.children.clear();
  registry.shared.clear();
  for (const { pid, command } of descendants()) {
    try {
      process.kill(pid, 'SIGKILL');
      if (!quiet.has(pid) && !left.some((line) => line.startsWith(`${pid} `))) left.push(`${pid} ${command}`);
    } catch {
      // Gone already.
    }
  }
  return left;
}
