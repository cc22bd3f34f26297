/**
 * The int8 kernels (assembly/int8.ts, docs/int8.md): their own WASM module, embedded in its own
 * generated file, so that a float-only bundle does not carry them; an int8 plan loads them with
 * `Int8Kernels.create()`.
 */
import { int8KernelExportsNames, type Int8KernelExports } from './exports.generated.js';
import { int8KernelsRelaxedWasmBase64, int8KernelsSharedWasmBase64, int8KernelsWasmBase64 } from './int8.generated.js';
import {
  decodeBuild,
  hasFunctions,
  KernelMemory,
  kernelVariant,
  SHARED_MAXIMUM_PAGES,
  WasmUnavailableError,
  type KernelOptions,
  type KernelVariant,
} from './module.js';

export type { Int8KernelExports };

const compiled = new Map<KernelVariant, Promise<WebAssembly.Module>>();

/**
 * One instance of the int8 kernels with its own memory (see KernelMemory). Two builds, picked at
 * load as the float kernels' are: SIMD128, and relaxed SIMD where the engine validates it, whose
 * qgemm7 is one 8-bit dot-product instruction per 16 multiply-adds (in the SIMD128 build qgemm7
 * computes the same integers more slowly, so plans use it only on the relaxed build).
 */
export class Int8Kernels extends KernelMemory {
  private constructor(
    readonly exports: Int8KernelExports,
    readonly variant: KernelVariant,
    /** Why the relaxed build was not used although the engine validates it (null: it was, or was not asked for). */
    readonly relaxedRefused: string | null = null,
  ) {
    super(exports.memory, exports.heapBase());
  }

  /**
   * Loads the build this engine runs (relaxed SIMD where it validates, unless
   * `options.relaxedSimd` is false), after checking the relaxed build's 8-bit dot product on known
   * values: where it computes wrong sums (Node 20's V8 under --experimental-wasm-relaxed-simd
   * doubles them), the SIMD128 build is loaded instead and `relaxedRefused` says why.
   */
  static async create(options: KernelOptions = {}): Promise<Int8Kernels> {
    if (options.shared === true) {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: SHARED_MAXIMUM_PAGES, shared: true });
      return new Int8Kernels(await instantiateSharedInt8Kernels(memory), 'simd-shared');
    }
    const variant = kernelVariant(options);
    const kernels = new Int8Kernels(await instantiate(variant), variant);
    if (variant !== 'relaxed-simd') return kernels;
    const wrong = DOT_PROBES.find(([a, b, c]) => kernels.exports.qdot4Probe(a, b, c) !== 4 * a * b + c);
    if (wrong === undefined) return kernels;
    const [a, b, c] = wrong;
    return new Int8Kernels(
      await instantiate('simd'),
      'simd',
      `this engine's i32x4.relaxed_dot_i8x16_i7x16_add_s gives ${kernels.exports.qdot4Probe(a, b, c)} for ` +
        `4 × ${a} × ${b} + ${c} = ${4 * a * b + c}: the int8 kernels run their SIMD128 build`,
    );
  }
}

/** (a, b, c) with b in [0, 127]: the relaxed dot product must give 4ab + c for each. */
const DOT_PROBES: readonly [number, number, number][] = [
  [-1, 1, 0],
  [-128, 127, 7],
  [127, 127, -3],
  [-5, 3, 1000],
];

/**
 * Instantiates the shared-memory build of the int8 kernels over `memory` (one instance per thread
 * of a threaded int8 plan, all over the same memory; the build has no data segments).
 */
export async function instantiateSharedInt8Kernels(memory: WebAssembly.Memory): Promise<Int8KernelExports> {
  return instantiate('simd-shared', memory);
}

const builds: Record<KernelVariant, string> = {
  simd: int8KernelsWasmBase64,
  'relaxed-simd': int8KernelsRelaxedWasmBase64,
  'simd-shared': int8KernelsSharedWasmBase64,
};

async function instantiate(variant: KernelVariant, memory?: WebAssembly.Memory): Promise<Int8KernelExports> {
  let module = compiled.get(variant);
  if (module === undefined) {
    module = decodeBuild(builds[variant])
      .then((bytes) => WebAssembly.compile(bytes))
      .catch((error: unknown) => {
        compiled.delete(variant);
        throw new WasmUnavailableError(
          `int8 kernels: this runtime cannot compile WebAssembly SIMD (${error instanceof Error ? error.message : String(error)})`,
        );
      });
    compiled.set(variant, module);
  }
  const instance = await WebAssembly.instantiate(await module, memory === undefined ? {} : { env: { memory } });
  const exports = memory === undefined ? instance.exports : { ...instance.exports, memory };
  if (
    !hasFunctions<Int8KernelExports>(exports, int8KernelExportsNames) ||
    !(exports.memory instanceof WebAssembly.Memory)
  ) {
    throw new WasmUnavailableError('int8 kernels: the build lacks exports that exports.generated.ts declares');
  }
  return exports;
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
