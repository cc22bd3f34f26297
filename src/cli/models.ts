/**
 * Model files for the commands: a float model (any format `loadModel` reads) or one of our int8
 * model files (src/runtime/quant/file.ts), told apart by the file's own metadata.
 */
import { FormatError, ShapeError } from '../errors.js';
import { loadModel, type LoadedModel } from '../io/load.js';
import { readSafetensors } from '../io/safetensors.js';
import type { Graph } from '../graph/graph.js';
import { createNodeSession } from '../node/session.js';
import { QuantizedPlan } from '../runtime/quant/plan.js';
import { formatShape, sameShape, type Tensor } from '../tensor/tensor.js';
import type { QuantizedNetwork } from '../runtime/quant/network.js';
import { isQuantizedModelFile, loadQuantizedModelFile, type QuantizationInfo } from '../runtime/quant/file.js';
import { readFileOrFail } from './files.js';
import { decodeModelProto } from '../io/onnx/codec.js';
import { importQdqModel, isQdqModel } from '../runtime/quant/qdq.js';

export interface CliModel {
  loaded: LoadedModel;
  /** Set for an int8 file: the network the int8 kernels run, and (our model files) its metadata. */
  int8?: { network: QuantizedNetwork; quantization?: QuantizationInfo };
}

export function loadCliModel(path: string, arch?: string): CliModel {
  const bytes = readFileOrFail(path, 'model');
  if (path.endsWith('.onnx')) {
    const model = decodeModelProto(bytes, path);
    if (isQdqModel(model)) {
      if (arch !== undefined)
        throw new FormatError(`${path}: holds its own graph; --arch ${arch} applies only to weights without a network`);
      const network = importQdqModel(model, path);
      return { loaded: atTracedShape(network, path, `int8 ONNX (QDQ) graph ${path}`, {}), int8: { network } };
    }
  }
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

/** An int8 network as a LoadedModel: its graph at the one input shape it was quantized at. */
function atTracedShape(
  network: QuantizedNetwork,
  path: string,
  description: string,
  info: LoadedModel['info'],
): LoadedModel {
  const traced = network.graph.input.shape;
  return {
    graphFor(shape) {
      if (!sameShape(shape, traced)) {
        throw new ShapeError(
          `${path}: an int8 model runs at the input shape it was quantized at, ${formatShape(traced)}, not ${formatShape(shape)}`,
        );
      }
      return network.graph;
    },
    inputShape: traced,
    description,
    ...(info !== undefined ? { info } : {}),
  };
}

/** What the inference commands run: a session of the fast plan, or the int8 reference executor. */
export interface Runner {
  run(input: Tensor): Promise<Tensor>;
  readonly threads: number;
  readonly notes: string;
  dispose(): Promise<void>;
}

/** A session on `graph` for a float model; the int8 plan (one thread) for an int8 one. */
export async function openRunner(model: CliModel, graph: Graph, threads: number | 'auto'): Promise<Runner> {
  const int8 = model.int8;
  if (int8 === undefined) return createNodeSession(graph, { threads });
  const plan = await QuantizedPlan.create(int8.network);
  return {
    run: (input) => Promise.resolve(plan.runBatch(input)),
    threads: 1,
    notes: 'int8 kernels, 1 thread',
    dispose: () => Promise.resolve(),
  };
}
