/**
 * `.onnx` files in the model loader table: `shufflenet infer --model model.onnx` runs them. A file
 * that `shufflenet export` wrote from one of our networks carries that network's architecture in
 * its metadata (`onnxArchitectureKey`) and its parameters under our names: it loads back as that
 * network (a module: fine-tunable, `info` shows it), checked like a model file's metadata and built
 * under the file's element budget. Any other file loads as an imported graph.
 */
import { FormatError, ShuffleNetError } from '../../errors.js';
import { withInputShape } from '../../graph/reshape.js';
import { checkArchitecture, type Architecture } from '../../models/registry.js';
import type { Tensor } from '../../tensor/tensor.js';
import { FieldError } from '../../validate.js';
import { moduleModel, type ModelLoader } from '../loaded.js';
import { buildWithWeights } from '../modelfile.js';
import { decodeModelProto } from './codec.js';
import { importOnnxModel } from './import.js';

/** The metadata_props key under which `shufflenet export` writes the network's architecture (JSON). */
export const onnxArchitectureKey = 'shufflenet.architecture';

/** Most bytes of architecture JSON a file may carry. */
const maxArchitectureBytes = 64 * 1024;

export const onnxLoader: ModelLoader = {
  name: 'onnx',
  matches: (fileName) => fileName.toLowerCase().endsWith('.onnx'),
  load(bytes, fileName, arch) {
    const model = decodeModelProto(bytes, fileName);
    const graph = importOnnxModel(model, fileName);
    const entry = (model.metadata_props ?? []).find((p) => p.key === onnxArchitectureKey);
    if (entry === undefined) {
      return {
        graphFor: (shape) => withInputShape(graph, shape),
        inputShape: graph.input.shape,
        description: `ONNX model ${fileName} (${graph.nodes.length} nodes)`,
      };
    }
    const fail = (why: string): never => {
      throw new FormatError(`${fileName}: metadata ${onnxArchitectureKey} ${why}`);
    };
    if (arch !== undefined) {
      throw new FormatError(`${fileName}: an ONNX file that names its own network; --arch ${arch} does not apply`);
    }
    const text = entry.value ?? '';
    if (text.length > maxArchitectureBytes) fail(`is ${text.length} bytes; at most ${maxArchitectureBytes}`);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return fail('is not JSON');
    }
    let architecture: Architecture;
    try {
      architecture = checkArchitecture(value, onnxArchitectureKey);
    } catch (e) {
      if (e instanceof FieldError) return fail(`does not hold an architecture: ${e.message}`);
      throw e;
    }
    const tensors = new Map<string, Tensor>([...graph.params].map(([name, p]) => [name, p.tensor]));
    const stored = [...tensors.values()].reduce((sum, t) => sum + t.size, 0);
    try {
      const module = buildWithWeights(architecture, tensors, stored, 'the network in its metadata');
      const loaded = moduleModel(module, `ONNX model ${fileName} (${architecture.family})`, { architecture });
      return { ...loaded, inputShape: graph.input.shape };
    } catch (e) {
      if (e instanceof ShuffleNetError) return fail(`does not fit the file's parameters: ${e.message}`);
      throw e;
    }
  },
};
