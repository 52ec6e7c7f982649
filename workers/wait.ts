/**
 * Waits until `array[index] >= target` without blocking the event loop. Atomics.waitAsync compares
 * the cell with the value we last saw before it sleeps, so a notify that lands between our load and
 * our wait cannot be lost: the wait then returns "not-equal" at once and we look again.
 * `pollMs` bounds each sleep so a caller can sample progress between wake-ups (Infinity: no bound). A
 * wait whose writers died (the count will never arrive) ends at the next wake-up after `stopped()` turns
 * true: within `pollMs`, or at once if the caller notifies `index` after making `stopped()` true.
 */
export async function waitAtLeast(
  array: Int32Array,
  index: number,
  target: number,
  pollMs: number,
  stopped: () => boolean,
  onPoll?: () => void,
): Promise<void> {
  for (;;) {
    const seen = Atomics.load(array, index);
    if (seen >= target || stopped()) return;
    const wait = Atomics.waitAsync(array, index, seen, pollMs);
    if (wait.async) await wait.value;
    onPoll?.();
  }
}
