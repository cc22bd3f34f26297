/**
 * Model files for the commands: a float model (any format `loadModel` reads) or one of our int8
 * model files (src/runtime/quant/file.ts), told apart by the file's own metadata.
 */
import { FormatError, ShapeError } from '../errors.js';
import { loadModel, type LoadedModel } from '../io/load.js';
import { readSafetensors } from '../io/safetensors.js';
import { formatShape, sameShape } from '../tensor/tensor.js';
import type { QuantizedNetwork } from '../runtime/quant/network.js';
import { isQuantizedModelFile, loadQuantizedModelFile, type QuantizationInfo } from '../runtime/quant/file.js';
import { readFileOrFail } from './files.js';

export interface CliModel {
  loaded: LoadedModel;
  /** Set for an int8 model file: the network the int8 kernels run, and its metadata. */
  int8?: { network: QuantizedNetwork; quantization: QuantizationInfo };
}

export function loadCliModel(path: string, arch?: string): CliModel {
  const bytes = readFileOrFail(path, 'model');
  if (path.endsWith('.safetensors')) {
    const file = readSafetensors(bytes, path);
    if (isQuantizedModelFile(file)) {
      if (arch !== undefined)
        throw new FormatError(
          `${path}: an int8 model file names its own network; --arch applies only to weights without one`,
        );
      const { network, info, quantization } = loadQuantizedModelFile(bytes, path, file);
      const traced = network.graph.input.shape;
      const loaded: LoadedModel = {
        graphFor(shape) {
          if (!sameShape(shape, traced)) {
            throw new ShapeError(
              `${path}: an int8 model runs at the input shape it was calibrated at, ${formatShape(traced)}, not ${formatShape(shape)}`,
            );
          }
          return network.graph;
        },
        info,
        description: `int8 model file ${path}${info.arch ? ` (${info.arch})` : ''}`,
      };
      return { loaded, int8: { network, quantization } };
    }
  }
  return { loaded: loadModel(bytes, path, arch) };
}
