import { readFileSync, readdirSync } from 'node:fs';

/** Whether the memory thread asks for transparent huge pages on the buffers it maps, and why. */
export interface HugePagesDecision {
  readonly wanted: boolean;
  readonly reason: string;
}

/** The virtio feature bit of a balloon device that reports free memory to the hypervisor (VIRTIO_BALLOON_F_REPORTING). */
const BALLOON_F_REPORTING = 5;
const BALLOON_DRIVER = '/sys/bus/virtio/drivers/virtio_balloon';

/**
 * Huge pages are asked for unless `HPAIR_NO_HUGE_PAGES` says otherwise (`1` or any other value: off; `0`: on
 * whatever the host) or, when it is unset or empty, the machine is a virtual machine whose balloon device reports
 * free memory to the hypervisor. Such a guest hands free blocks of huge-page size back to the host, which takes
 * their backing away; the next huge page the guest builds from such a block is backed again at the host's pace,
 * so a first touch of a big buffer is several times slower with the advice than without it (small pages come
 * from memory the host still backs). Only a buffer refilled soon after an equal one was freed gains: that case
 * is the one `HPAIR_NO_HUGE_PAGES=0` is for. Compaction stalls were not the cost there (the kernel counted none).
 *
 * `balloonFeatures` lists the feature strings of the bound balloon devices ('0'/'1' per bit, as sysfs gives
 * them); a test passes its own.
 */
export function decideHugePages(env: string | undefined, balloonFeatures: () => readonly string[] = readBalloonFeatures): HugePagesDecision {
  if (env === '0') return { wanted: true, reason: 'HPAIR_NO_HUGE_PAGES=0 asks for them' };
  if (env !== undefined && env !== '') return { wanted: false, reason: `HPAIR_NO_HUGE_PAGES=${env} turns them off` };
  let features: readonly string[];
  try {
    features = balloonFeatures();
  } catch {
    features = [];
  }
  if (features.some((bits) => bits[BALLOON_F_REPORTING] === '1'))
    return { wanted: false, reason: 'a virtio balloon reports free memory to the hypervisor: a new huge page would be backed again on first touch' };
  return { wanted: true, reason: 'the default' };
}

/** The feature strings of the virtio balloon devices bound on this Linux machine; none elsewhere. */
function readBalloonFeatures(): string[] {
  if (process.platform !== 'linux') return [];
  let entries: string[];
  try {
    entries = readdirSync(BALLOON_DRIVER);
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of entries) {
    if (!name.startsWith('virtio')) continue;
    try {
      out.push(readFileSync(`${BALLOON_DRIVER}/${name}/features`, 'utf8').trim());
    } catch {
      // A device that went away meanwhile reports nothing.
    }
  }
  return out;
}

let decided: HugePagesDecision | undefined;

/** This process's decision, made once (when the memory thread first starts). */
export function hugePagesDecision(): HugePagesDecision {
  decided ??= decideHugePages(process.env.HPAIR_NO_HUGE_PAGES);
  return decided;
}
