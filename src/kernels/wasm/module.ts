/**
 * Loads the WASM SIMD kernels (compiled from ./assembly by `npm run build:wasm` and embedded as
 * base64, so no file access is needed in Node or browsers) and manages their linear memory.
 */
import { ShuffleNetError } from '../../errors.js';
import {
  inferenceKernelExportsNames,
  kernelExportsNames,
  type InferenceKernelExports,
  type KernelExports,
} from './exports.generated.js';
import { kernelsRelaxedWasmBase64, kernelsSharedWasmBase64, kernelsWasmBase64 } from './kernels.generated.js';

export type { InferenceKernelExports, KernelExports };

export class WasmUnavailableError extends ShuffleNetError {}

/**
 * Which build of the kernels an instance runs. 'simd-shared' is the SIMD128 build over an imported
 * shared memory, which every thread of an intra-op threaded plan instantiates (src/runtime/team.ts).
 */
export type KernelVariant = 'simd' | 'relaxed-simd' | 'simd-shared';

export interface KernelOptions {
  /**
   * Use the relaxed-SIMD build (fused multiply-add) where the engine validates it: Chrome since
   * 114, other engines as they ship it; Node 20 only with --experimental-wasm-relaxed-simd.
   * Default true.
   */
  relaxedSimd?: boolean;
  /**
   * Allocate a shared memory (SharedArrayBuffer, up to SHARED_MAXIMUM_PAGES) and run the
   * 'simd-shared' build over it, so that other threads can instantiate the same kernels over the
   * same memory. Needs SharedArrayBuffer (cross-origin isolation in browsers). Default false.
   */
  shared?: boolean;
}

/** The maximum size of a shared kernel memory in 64 KiB pages (1 GiB), as declared by the build. */
export const SHARED_MAXIMUM_PAGES = 16384;

const compiled = new Map<KernelVariant, Promise<WebAssembly.Module>>();

/** A build as embedded: base64 of raw-deflate-compressed WASM (scripts/build-wasm.mjs). */
export async function decodeBuild(text: string): Promise<Uint8Array<ArrayBuffer>> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  return new Uint8Array(await new Response(inflated).arrayBuffer());
}

/**
 * The smallest module that uses a relaxed-SIMD instruction: `(func (param v128) (result v128)
 * local.get 0 i32x4.relaxed_trunc_f32x4_s)`. An engine that validates it runs the relaxed build.
 */
// prettier-ignore
const relaxedProbe = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7b, 0x01, 0x7b, // type section: (v128) -> v128
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x09, 0x01, 0x07, 0x00, 0x20, 0x00, 0xfd, 0x81, 0x02, 0x0b, // code: local.get 0, 0xfd 0x101, end
]);

/** The variant this engine runs: relaxed SIMD if it validates a relaxed-SIMD instruction. */
export function kernelVariant(options: KernelOptions = {}): KernelVariant {
  if (options.relaxedSimd === false) return 'simd';
  return WebAssembly.validate(relaxedProbe) ? 'relaxed-simd' : 'simd';
}

/** Compiles a build of the kernels once per process (or page); instances share it. */
export function compileKernels(variant: KernelVariant): Promise<WebAssembly.Module> {
  let module = compiled.get(variant);
  if (module === undefined) {
    const base64 =
      variant === 'relaxed-simd'
        ? kernelsRelaxedWasmBase64
        : variant === 'simd-shared'
          ? kernelsSharedWasmBase64
          : kernelsWasmBase64;
    module = decodeBuild(base64)
      .then((bytes) => WebAssembly.compile(bytes))
      .catch((error: unknown) => {
        compiled.delete(variant);
        throw new WasmUnavailableError(
          `wasm kernels: this runtime cannot compile WebAssembly SIMD (${error instanceof Error ? error.message : String(error)})`,
        );
      });
    compiled.set(variant, module);
  }
  return module;
}

const PAGE = 65536;
/** Bytes left free after every allocation: the kernels' vector tails may read (never write) there. */
const SLACK = 64;

/**
 * A kernels instance's memory with a bump allocator over it. Allocations are 16-byte aligned and
 * keep SLACK bytes after them; `mark`/`release` free everything allocated after a mark. The float
 * kernels (WasmKernels) and the int8 kernels (Int8Kernels, ./int8.ts) are both one of these.
 */
export class KernelMemory {
  private top: number;

  protected constructor(
    readonly memory: WebAssembly.Memory,
    heapBase: number,
  ) {
    this.top = align(heapBase + SLACK);
  }

  /** Reserves `bytes` (plus slack) and returns the byte address. */
  allocBytes(bytes: number): number {
    const address = this.top;
    this.top = align(address + bytes + SLACK);
    const needed = this.top - this.memory.buffer.byteLength;
    if (needed > 0) this.memory.grow(Math.ceil(needed / PAGE));
    return address;
  }

  allocFloats(count: number): number {
    return this.allocBytes(count * 4);
  }

  /** Copies `data` into freshly allocated memory and returns its address. */
  upload(data: Float32Array | Uint32Array | Int32Array | Int16Array | Uint8Array): number {
    const address = this.allocBytes(data.byteLength);
    new Uint8Array(this.memory.buffer, address, data.byteLength).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    return address;
  }

  mark(): number {
    return this.top;
  }

  release(mark: number): void {
    this.top = mark;
  }

  /** A view of `count` floats at `address`; invalid after the memory grows, so take it late. */
  f32(address: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, address, count);
  }

  u32(address: number, count: number): Uint32Array {
    return new Uint32Array(this.memory.buffer, address, count);
  }

  u8(address: number, count: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, address, count);
  }
}

/** One instance of the float kernels with its own memory (see KernelMemory). */
export class WasmKernels extends KernelMemory {
  private constructor(
    readonly exports: KernelExports,
    readonly variant: KernelVariant,
  ) {
    super(exports.memory, exports.heapBase());
  }

  static async create(options: KernelOptions = {}): Promise<WasmKernels> {
    if (options.shared === true) {
      const memory = new WebAssembly.Memory({ initial: 1, maximum: SHARED_MAXIMUM_PAGES, shared: true });
      return new WasmKernels(await instantiateSharedKernels(memory), 'simd-shared');
    }
    const variant = kernelVariant(options);
    const instance = await WebAssembly.instantiate(await compileKernels(variant), {});
    const exports = instance.exports;
    if (!hasFunctions<KernelExports>(exports, kernelExportsNames) || !(exports.memory instanceof WebAssembly.Memory)) {
      throw new WasmUnavailableError(
        `wasm kernels: the ${variant} build lacks exports that exports.generated.ts declares`,
      );
    }
    return new WasmKernels(exports, variant);
  }

  /** Whether the memory is a SharedArrayBuffer that other threads can instantiate kernels over. */
  get shared(): boolean {
    return this.variant === 'simd-shared';
  }
}

/**
 * Instantiates the 'simd-shared' build over an existing shared memory (one per thread, all over
 * the same memory). The build has no data segments, so instantiating it writes nothing to memory.
 */
export async function instantiateSharedKernels(memory: WebAssembly.Memory): Promise<KernelExports> {
  const instance = await WebAssembly.instantiate(await compileKernels('simd-shared'), { env: { memory } });
  const exports = { ...instance.exports, memory };
  if (!hasFunctions<InferenceKernelExports>(exports, inferenceKernelExportsNames)) {
    throw new WasmUnavailableError(
      'wasm kernels: the simd-shared build lacks exports that exports.generated.ts declares',
    );
  }
  // NOTE: the one remaining cast. The shared build has the inference kernels only
  // (InferenceKernelExports); its callers (WasmKernels over a shared memory, src/runtime/team.ts)
  // still take KernelExports and call only inference kernels.
  return exports as KernelExports;
}

/** Whether every name is a function export: the guard that types an instance's exports. */
export function hasFunctions<T extends WebAssembly.Exports>(
  exports: WebAssembly.Exports,
  names: readonly string[],
): exports is T {
  return names.every((name) => typeof exports[name] === 'function');
}

function align(address: number): number {
  return (address + 15) & ~15;
}
