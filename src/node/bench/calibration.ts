/**
 * The calibration kernel timed between benchmark rounds: a fixed, deterministic workload whose time
 * only the machine's speed can change (frequency, other processes, thermal state). It is plain
 * JavaScript over Float64Arrays on purpose: it must not depend on anything the benchmark compares
 * (our WASM kernels, ONNX Runtime), so that an engine change can never look like drift.
 */
import { medianTime } from './stats.js';

/** What the kernel computes, for the report. */
export const calibrationDescription =
  'a fixed 64×64×64 matrix product in plain JavaScript (Float64Array), median of 5 repeats per round';

const n = 64;
const a = new Float64Array(n * n).map((_, i) => ((i * 7919) % 97) / 97);
const b = new Float64Array(n * n).map((_, i) => ((i * 104729) % 89) / 89);
const c = new Float64Array(n * n);

// The product accumulates into the module's `c`, which outlives the call, so the JIT cannot drop it.
function product(): void {
  c.fill(0);
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k]!;
      for (let j = 0; j < n; j++) c[i * n + j] = c[i * n + j]! + aik * b[k * n + j]!;
    }
  }
}

/** Times the kernel `repeats` times and returns the median in milliseconds. */
export function timeCalibration(repeats = 5): number {
  return medianTime(product, repeats);
}
