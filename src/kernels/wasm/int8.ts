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
