/**
 * The int8 kernels (assembly/int8.ts, docs/int8.md): their own WASM module, embedded in its own
 * generated file, so that a float-only bundle does not carry them; an int8 plan loads them with
 * `Int8Kernels.create()`.
 */
import { int8KernelExportsNames, type Int8KernelExports } from './exports.generated.js';
import { int8KernelsWasmBase64 } from './int8.generated.js';
import { decodeBuild, hasFunctions, KernelMemory, WasmUnavailableError } from './module.js';

export type { Int8KernelExports };

let compiled: Promise<WebAssembly.Module> | undefined;

/** One instance of the int8 kernels with its own memory (see KernelMemory). */
export class Int8Kernels extends KernelMemory {
  private constructor(readonly exports: Int8KernelExports) {
    super(exports.memory, exports.heapBase());
  }

  static async create(): Promise<Int8Kernels> {
    compiled ??= decodeBuild(int8KernelsWasmBase64)
      .then((bytes) => WebAssembly.compile(bytes))
      .catch((error: unknown) => {
        compiled = undefined;
        throw new WasmUnavailableError(
          `int8 kernels: this runtime cannot compile WebAssembly SIMD (${error instanceof Error ? error.message : String(error)})`,
        );
      });
    const instance = await WebAssembly.instantiate(await compiled, {});
    const exports = instance.exports;
    if (
      !hasFunctions<Int8KernelExports>(exports, int8KernelExportsNames) ||
      !(exports.memory instanceof WebAssembly.Memory)
    ) {
      throw new WasmUnavailableError('int8 kernels: the build lacks exports that exports.generated.ts declares');
    }
    return new Int8Kernels(exports);
  }
}

/** The activations an int8 kernel clamps in its epilogue. */
export type Int8Activation = 'relu' | 'relu6' | null;

/**
 * The epilogue block every int8 kernel reads (`params`), 8 vectors of 4 lanes (128 bytes):
 *   lo, hi        f32 clamps in output steps: the activation's (ReLU: [0, ·], ReLU6: [0, fround(6 / s_y)])
 *                 intersected with [−z_y, 255 − z_y], so that a clamped value rounds to a uint8 and the
 *                 "magic number" rounding stays exact
 *   rounding      i32 0x4B400000 − z_y (the magic number's bits, minus the zero point)
 *   −z_c, 255 − z_c, m_a, m_r, z_r   f32, for a residual step (see residualSteps in the reference):
 *                 the pre-add value's uint8 range in its steps, m_a = s_c / s_y, m_r = s_r / s_y
 */
export function epilogueParams(
  activation: Int8Activation,
  out: { scale: number; zeroPoint: number },
  residual?: { pre: { scale: number; zeroPoint: number }; res: { scale: number; zeroPoint: number } },
): Uint8Array {
  const bytes = new ArrayBuffer(8 * 16);
  const f = new Float32Array(bytes);
  const i = new Int32Array(bytes);
  const z = out.zeroPoint;
  f.fill(activation === null ? -z : 0, 0, 4);
  f.fill(activation === 'relu6' ? Math.min(Math.fround(6 / out.scale), 255 - z) : 255 - z, 4, 8);
  i.fill(0x4b400000 - z, 8, 12);
  if (residual !== undefined) {
    f.fill(-residual.pre.zeroPoint, 12, 16);
    f.fill(255 - residual.pre.zeroPoint, 16, 20);
    f.fill(Math.fround(residual.pre.scale / out.scale), 20, 24);
    f.fill(Math.fround(residual.res.scale / out.scale), 24, 28);
    f.fill(residual.res.zeroPoint, 28, 32);
  }
  return new Uint8Array(bytes);
}
