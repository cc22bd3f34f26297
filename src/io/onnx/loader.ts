/** `.onnx` files in the model loader table: `shufflenet infer --model model.onnx` runs them. */
import { withInputShape } from '../../graph/reshape.js';
import type { ModelLoader } from '../load.js';
import { importOnnx } from './import.js';

export const onnxLoader: ModelLoader = {
  name: 'onnx',
  matches: (fileName) => fileName.toLowerCase().endsWith('.onnx'),
  load(bytes, fileName) {
    const graph = importOnnx(bytes, fileName);
    return {
      graphFor: (shape) => withInputShape(graph, shape),
      inputShape: graph.input.shape,
      description: `ONNX model ${fileName} (${graph.nodes.length} nodes)`,
    };
  },
};
