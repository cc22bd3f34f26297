/**
 * The TF.js WASM peer: our traced graph expressed in TF.js ops (TF.js cannot read ONNX). TF.js
 * works in NHWC, so weights are transposed once at preparation and the NCHW input once per run.
 * TF.js has no grouped convolution: a conv with 1 < groups < channels runs as split → one conv per
 * group → concat, as the table did. Depthwise convs use depthwiseConv2d.
 * Pools pad explicitly (with −∞ for max, 0 for average) because TF.js's own padding excludes the
 * border from the average while PyTorch's count_include_pad (our default) includes it.
 */
import type { Graph, GraphNode } from '../../graph/graph.js';
import type { Tensor } from '../../tensor/tensor.js';
import { BenchmarkError } from './errors.js';

type TF = typeof import('@tensorflow/tfjs-core');
type TFTensor = import('@tensorflow/tfjs-core').Tensor;

/** The ops this translation covers; any other op makes the network "not expressible". */
const supported = new Set([
  'conv2d',
  'batchNorm',
  'relu',
  'add',
  'concat',
  'channelShuffle',
  'maxPool2d',
  'avgPool2d',
  'globalAvgPool',
  'flatten',
  'linear',
]);

/** Why the graph cannot be expressed in TF.js, or null when it can. */
export function tfjsUnsupported(graph: Graph): string | null {
  const missing = [...new Set(graph.nodes.filter((n) => !supported.has(n.op)).map((n) => n.op))];
  return missing.length === 0 ? null : `no TF.js translation for op(s) ${missing.join(', ')}`;
}

/** Compiles the graph to a function from an NCHW input to the logits, on the current TF.js backend. */
export function tfjsProgram(tf: TF, graph: Graph): { run(input: Tensor): Float32Array; dispose(): void } {
  const weights = new Map<string, TFTensor>();
  const param = (name: string): Tensor => graph.params.get(name)!.tensor;
  const keep = (key: string, make: () => TFTensor): TFTensor => {
    let t = weights.get(key);
    if (t === undefined) {
      t = tf.keep(make());
      weights.set(key, t);
    }
    return t;
  };
  // OIHW → HWIO, per group when the conv is split.
  const convWeight = (name: string, group: number, groups: number): TFTensor =>
    keep(`${name}#${group}/${groups}`, () => {
      const w = param(name);
      const [o, i, kh, kw] = w.shape as [number, number, number, number];
      const per = o / groups;
      const slice = w.data.subarray(group * per * i * kh * kw, (group + 1) * per * i * kh * kw);
      return tf.transpose(tf.tensor4d(slice, [per, i, kh, kw]), [2, 3, 1, 0]);
    });
  const vector = (name: string): TFTensor => keep(name, () => tf.tensor1d(param(name).data));

  const steps: ((values: Map<string, TFTensor>) => void)[] = [];
  for (const node of graph.nodes) steps.push(translate(node));

  function translate(node: GraphNode): (values: Map<string, TFTensor>) => void {
    const [first] = node.inputs;
    const x = (values: Map<string, TFTensor>): TFTensor => values.get(first!)!;
    const set = (values: Map<string, TFTensor>, t: TFTensor): void => void values.set(node.output, t);
    switch (node.op) {
      case 'conv2d': {
        const a = node.attrs;
        const [o, i] = param(node.inputs[1]!).shape as [number, number];
        const [top, left, bottom, right] = a.padding;
        const pad: [[number, number], [number, number], [number, number], [number, number]] = [
          [0, 0],
          [top, bottom],
          [left, right],
          [0, 0],
        ];
        const stride: [number, number] = [a.stride[0], a.stride[1]];
        const dilation: [number, number] = [a.dilation[0], a.dilation[1]];
        const bias = node.inputs[2] === undefined ? null : vector(node.inputs[2]);
        const withBias = (t: TFTensor): TFTensor => (bias ? tf.add(t, bias) : t);
        if (a.groups === 1) {
          const w = convWeight(node.inputs[1]!, 0, 1);
          return (v) => set(v, withBias(tf.conv2d(x(v) as never, w as never, stride, pad, 'NHWC', dilation)));
        }
        if (i === 1 && o === a.groups) {
          // Depthwise: [C, 1, kh, kw] → [kh, kw, C, 1].
          const w = keep(`${node.inputs[1]}#dw`, () => tf.transpose(convWeight(node.inputs[1]!, 0, 1), [0, 1, 3, 2]));
          return (v) => set(v, withBias(tf.depthwiseConv2d(x(v) as never, w as never, stride, pad, 'NHWC', dilation)));
        }
        const ws = Array.from({ length: a.groups }, (_, g) => convWeight(node.inputs[1]!, g, a.groups));
        return (v) => {
          const parts = tf.split(x(v), a.groups, 3);
          const outs = parts.map((p, g) => tf.conv2d(p as never, ws[g] as never, stride, pad, 'NHWC', dilation));
          set(v, withBias(tf.concat(outs, 3)));
        };
      }
      case 'batchNorm': {
        const [gamma, beta, mean, variance] = node.inputs.slice(1).map((n) => vector(n));
        const eps = node.attrs.eps;
        return (v) => set(v, tf.batchNorm(x(v), mean!, variance!, beta!, gamma!, eps));
      }
      case 'relu':
        return (v) => set(v, tf.relu(x(v)));
      case 'add':
        return (v) => set(v, tf.add(x(v), v.get(node.inputs[1]!)!));
      case 'concat':
        return (v) =>
          set(
            v,
            tf.concat(
              node.inputs.map((n) => v.get(n)!),
              3,
            ),
          );
      case 'channelShuffle': {
        const g = node.attrs.groups;
        return (v) => {
          const t = x(v);
          const [n, h, w, c] = t.shape as [number, number, number, number];
          const shuffled = tf.transpose(tf.reshape(t, [n * h * w, g, c / g]), [0, 2, 1]);
          set(v, tf.reshape(shuffled, [n, h, w, c]));
        };
      }
      case 'maxPool2d':
      case 'avgPool2d': {
        const a = node.attrs;
        const [top, left, bottom, right] = a.padding;
        const padded = top + left + bottom + right > 0;
        const isMax = node.op === 'maxPool2d';
        if (!isMax && !(node.op === 'avgPool2d' && node.attrs.countIncludePad) && padded) {
          throw new BenchmarkError(`${node.name}: TF.js translation: avgPool2d without count_include_pad`);
        }
        const kernel: [number, number] = [a.kernel[0], a.kernel[1]];
        const stride: [number, number] = [a.stride[0], a.stride[1]];
        return (v) => {
          let t = x(v);
          if (padded) {
            const fill = isMax ? -Infinity : 0;
            t = tf.pad(
              t,
              [
                [0, 0],
                [top, bottom],
                [left, right],
                [0, 0],
              ],
              fill,
            );
          }
          set(
            v,
            isMax ? tf.maxPool(t as never, kernel, stride, 'valid') : tf.avgPool(t as never, kernel, stride, 'valid'),
          );
        };
      }
      case 'globalAvgPool':
        return (v) => set(v, tf.mean(x(v), [1, 2], true));
      case 'flatten':
        // Back to NCHW order first, so the FC weights (PyTorch's layout) apply unchanged.
        return (v) => {
          const t = x(v);
          set(v, tf.reshape(t.rank === 4 ? tf.transpose(t, [0, 3, 1, 2]) : t, [t.shape[0]!, -1]));
        };
      case 'linear': {
        const w = keep(node.inputs[1]!, () => {
          const p = param(node.inputs[1]!);
          return tf.tensor2d(p.data, [p.shape[0]!, p.shape[1]!]);
        });
        const bias = node.inputs[2] === undefined ? null : vector(node.inputs[2]);
        return (v) => {
          const y = tf.matMul(x(v), w, false, true);
          set(v, bias ? tf.add(y, bias) : y);
        };
      }
      default:
        throw new BenchmarkError(`${node.name}: no TF.js translation for op "${node.op}"`);
    }
  }

  return {
    run(input: Tensor): Float32Array {
      const out = tf.tidy(() => {
        const values = new Map<string, TFTensor>();
        const [n, c, h, w] = input.shape as [number, number, number, number];
        values.set(graph.input.name, tf.transpose(tf.tensor4d(input.data, [n, c, h, w]), [0, 2, 3, 1]));
        for (const step of steps) step(values);
        return values.get(graph.output)!;
      });
      const data = out.dataSync() as Float32Array;
      out.dispose();
      return data;
    },
    dispose(): void {
      for (const t of weights.values()) t.dispose();
      weights.clear();
    },
  };
}
