/**
 * ONNX export against ONNX Runtime: each exported file runs in onnxruntime-node (and one in
 * onnxruntime-web's WASM backend) with the same outputs as our reference forward, at batch 1 and,
 * through the dynamic batch axis, batch 3.
 */
import * as ortNode from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ShuffleNetError } from '../src/errors.js';
import { runGraph } from '../src/graph/execute.js';
import type { GraphNode } from '../src/graph/graph.js';
import { exportOnnx } from '../src/io/onnx/export.js';
import { createModel, type ModelOptions } from '../src/models/registry.js';
import { Tensor } from '../src/tensor/tensor.js';
import { maxAbs, maxAbsDiff } from './helpers/fixtures.js';
import { randomInput, randomizeBuffers } from './helpers/random-state.js';

const cases: { name: string; options: ModelOptions; size: number }[] = [
  { name: 'shufflenet_v1_g3_0.25x', options: { numClasses: 10 }, size: 64 },
  { name: 'shufflenet_v1_g8_0.25x', options: { numClasses: 10, smallInput: true }, size: 32 },
  { name: 'shufflenet_v1_g3_0.25x_noshuffle', options: { numClasses: 10, smallInput: true }, size: 32 },
  { name: 'shufflenet_v1_g2_0.25x_se', options: { numClasses: 10, smallInput: true }, size: 32 },
  { name: 'shufflenet_v1_g4_0.25x_shallow', options: { numClasses: 7, inputChannels: 1, smallInput: true }, size: 28 },
  { name: 'mobilenet_v1_0.25', options: { numClasses: 10 }, size: 64 },
  { name: 'alexnet', options: { numClasses: 10, smallInput: true, inputSize: 32 }, size: 32 },
  { name: 'shufflenet_v2_1.0x', options: { numClasses: 10 }, size: 64 },
  { name: 'shufflenet_v2_0.5x', options: { numClasses: 5, inputChannels: 1, smallInput: true }, size: 28 },
];

type Session = {
  run(feeds: Record<string, unknown>): Promise<Record<string, { data: unknown; dims: readonly number[] }>>;
};

async function runOrt(
  ort: { Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => unknown },
  session: Session,
  input: Tensor,
): Promise<Tensor> {
  const out = await session.run({ input: new ort.Tensor('float32', input.data, input.shape) });
  const logits = out['logits']!;
  return new Tensor(logits.dims, logits.data as Float32Array);
}

describe('exportOnnx runs in onnxruntime-node with our outputs', () => {
  for (const c of cases) {
    it(`${c.name} ${JSON.stringify(c.options)} at batch 1 and 3`, async () => {
      const model = createModel(c.name, c.options);
      randomizeBuffers(model);
      const channels = c.options.inputChannels ?? 3;
      const graph = model.trace([1, channels, c.size, c.size]);
      const bytes = exportOnnx(graph);
      const session = (await ortNode.InferenceSession.create(bytes)) as unknown as Session;
      for (const batch of [1, 3]) {
        const input = randomInput([batch, channels, c.size, c.size], batch);
        const ours = runGraph(model.trace(input.shape), input);
        const theirs = await runOrt(ortNode, session, input);
        expect(theirs.shape).toEqual(ours.shape);
        const relative = maxAbsDiff(theirs, ours) / maxAbs(ours);
        console.log(`onnxruntime-node ${c.name} batch ${batch}: max |Δ| / max |logit| = ${relative.toExponential(2)}`);
        expect(relative).toBeLessThan(1e-4);
      }
    });
  }

  it('writes channel shuffle as Reshape → Transpose → Reshape and the batch as a symbolic dimension', async () => {
    const graph = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true }).trace([1, 3, 32, 32]);
    const text = new TextDecoder('latin1').decode(exportOnnx(graph));
    const shuffles = graph.nodes.filter((n) => n.op === 'channelShuffle').length;
    expect(shuffles).toBeGreaterThan(0);
    expect(text.split('/Transpose').length - 1).toBe(shuffles);
    expect(text.split('/Reshape').length - 1).toBe(2 * shuffles);
    expect(text).not.toContain('channelShuffle/'); // no custom op
  });
});

describe('exportOnnx options and refusals', () => {
  it('writes opset 21 too', async () => {
    const model = createModel('shufflenet_v1_g3_0.25x_se', { numClasses: 4, smallInput: true });
    randomizeBuffers(model);
    const session = (await ortNode.InferenceSession.create(
      exportOnnx(model.trace([1, 3, 16, 16]), { opset: 21 }),
    )) as unknown as Session;
    const input = randomInput([2, 3, 16, 16], 3);
    const ours = runGraph(model.trace(input.shape), input);
    expect(maxAbsDiff(await runOrt(ortNode, session, input), ours) / maxAbs(ours)).toBeLessThan(1e-4);
  });

  it('refuses an opset below 13 and an op without an ONNX form, naming the node', () => {
    const graph = createModel('mobilenet_v1_0.25', { numClasses: 2, smallInput: true }).trace([1, 3, 8, 8]);
    expect(() => exportOnnx(graph, { opset: 11 })).toThrow(ShuffleNetError);
    expect(() => exportOnnx(graph, { opset: 11 })).toThrow('opset must be an integer from 13 to 21 but is 11');
    const odd = {
      ...graph,
      // An op type the types forbid, as a hand-built or deserialised graph could still hold.
      nodes: [
        { ...graph.nodes[0]!, op: 'fancyOp', name: 'stem.conv' } as unknown as GraphNode,
        ...graph.nodes.slice(1),
      ],
    };
    expect(() => exportOnnx(odd)).toThrow('node "stem.conv" has op "fancyOp", which has no ONNX mapping');
  });
});

describe('exportOnnx runs in onnxruntime-web (WASM backend)', () => {
  it('shufflenet_v1_g3_0.25x at batch 2', async () => {
    const ortWeb = await import('onnxruntime-web');
    ortWeb.env.wasm.numThreads = 1;
    const model = createModel('shufflenet_v1_g3_0.25x', { numClasses: 10, smallInput: true });
    randomizeBuffers(model);
    const input = randomInput([2, 3, 32, 32], 7);
    const session = (await ortWeb.InferenceSession.create(exportOnnx(model.trace([1, 3, 32, 32])), {
      executionProviders: ['wasm'],
    })) as unknown as Session;
    const ours = runGraph(model.trace(input.shape), input);
    const theirs = await runOrt(ortWeb, session, input);
    const relative = maxAbsDiff(theirs, ours) / maxAbs(ours);
    console.log(`onnxruntime-web shufflenet_v1_g3_0.25x batch 2: max |Δ| / max |logit| = ${relative.toExponential(2)}`);
    expect(relative).toBeLessThan(1e-4);
  });
});
