/**
 * One entry point for every model format we read: bytes and a file name in, something that can
 * produce a graph for any input shape out. Each format registers a loader; the first whose
 * `matches` accepts the file wins.
 */
import { FormatError } from '../errors.js';
import { architectureOf, createModel } from '../models/registry.js';
import { moduleModel, type LoadedModel, type ModelLoader } from './loaded.js';
import { loadModelFile } from './modelfile.js';
import { readSafetensors } from './safetensors.js';
import { onnxLoader } from './onnx/loader.js';
import { torchLoader } from './torch/index.js';

export { moduleModel, type LoadedModel, type ModelLoader } from './loaded.js';

/** Our model files, or a bare PyTorch-named state dict in safetensors together with --arch. */
export const safetensorsLoader: ModelLoader = {
  name: 'safetensors',
  matches: (fileName) => fileName.endsWith('.safetensors'),
  load(bytes, fileName, arch) {
    const file = readSafetensors(bytes, fileName);
    if (file.metadata['shufflenet'] !== undefined) {
      const { model, info } = loadModelFile(bytes, fileName, file);
      if (arch !== undefined && arch !== info.arch) {
        // JSON quoting: the name comes from the file, and may hold anything (escape sequences too).
        const own = info.arch === undefined ? 'its own network' : JSON.stringify(info.arch);
        throw new FormatError(
          `${fileName}: a model file that names ${own}; --arch ${arch} applies only to weights without a network`,
        );
      }
      return moduleModel(model, `model file ${fileName}${info.arch ? ` (${info.arch})` : ''}`, info);
    }
    if (arch === undefined) {
      throw new FormatError(
        `${fileName}: a safetensors file without shufflenet metadata needs --arch NAME to say which network it holds`,
      );
    }
    const model = createModel(arch, { initialize: false });
    try {
      model.loadStateDict(file.tensors);
    } catch (e) {
      throw new FormatError(`${fileName}: does not fit ${arch}: ${(e as Error).message}`);
    }
    return moduleModel(model, `${fileName} as ${arch}`, { architecture: architectureOf(arch), arch });
  },
};

export const modelLoaders: ModelLoader[] = [safetensorsLoader, onnxLoader, torchLoader];

export function loadModel(bytes: Uint8Array, fileName: string, arch?: string): LoadedModel {
  const loader = modelLoaders.find((l) => l.matches(fileName, bytes));
  if (loader === undefined) {
    throw new FormatError(
      `${fileName}: unknown model format; supported: ${modelLoaders.map((l) => l.name).join(', ')}`,
    );
  }
  const loaded = loader.load(bytes, fileName, arch);
  // --arch names the network of weights that carry none: a graph must not have it silently ignored.
  if (arch !== undefined && loaded.module === undefined) {
    throw new FormatError(`${fileName}: holds its own graph; --arch ${arch} applies only to weights without a network`);
  }
  return loaded;
}
