/**
 * ONNX import against PyTorch: files written by torch.onnx.export (scripts/make_onnx_fixtures.py)
 * are imported and run on the reference kernels; outputs must equal PyTorch's to 1e-4 of the
 * largest output. Each file is also run with shuffle fusion off (the generic Reshape/Transpose
 * path) and at another batch size through the dynamic batch axis.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runGraph } from '../src/graph/execute.js';
import { withInputShape } from '../src/graph/reshape.js';
import { importOnnx } from '../src/io/onnx/import.js';
import { Tensor } from '../src/tensor/tensor.js';
import { get, loadFixture, maxAbs, maxAbsDiff } from './helpers/fixtures.js';

const reference = loadFixture('onnx/reference.safetensors');
const networks = JSON.parse(reference.metadata['networks']!) as {
  name: string;
  input: number[];
  dynamicBatch: boolean;
}[];
const file = (name: string) => readFileSync(new URL(`./fixtures/onnx/${name}.onnx`, import.meta.url));

describe('importOnnx matches PyTorch on files from torch.onnx.export', () => {
  it('covers the networks the issue names', () => {
    const names = networks.map((n) => n.name);
    for (const required of [
      'shufflenet_v1_paper',
      'shufflenet_v1_official',
      'shufflenet_v2_x0_5',
      'mobilenet_v1_relu6',
    ]) {
      expect(names).toContain(required);
    }
  });

  for (const net of networks) {
    it(`${net.name}`, () => {
      const input = get(reference, `${net.name}/input`);
      const expected = get(reference, `${net.name}/logits`);
      const bytes = file(net.name);
      for (const fuse of [true, false]) {
        const imported = importOnnx(bytes, `${net.name}.onnx`, { fuseChannelShuffle: fuse });
        const shuffles = imported.nodes.filter((n) => n.op === 'channelShuffle');
        expect(shuffles.length).toBe(fuse ? (expectedShuffles[net.name]?.count ?? 0) : 0);
        if (fuse && shuffles.length > 0) {
          expect(shuffles.map((n) => n.attrs['groups'])).toEqual(expectedShuffles[net.name]!.groups);
        }
        // The file's own batch (2), then batch 3 (rows 0, 1, 0) through withInputShape. The official
        // layout's file has its batch baked into its reshapes (as in onnxruntime, it then runs only
        // at batch 2) unless those reshapes are fused into shuffles.
        const out = runGraph(withInputShape(imported, input.shape), input);
        expect(out.shape).toEqual(expected.shape);
        const relative = maxAbsDiff(out, expected) / maxAbs(expected);
        console.log(`PyTorch ${net.name} (fuse ${fuse}): max |Δ| / max |out| = ${relative.toExponential(2)}`);
        expect(relative).toBeLessThan(1e-4);
        if (!fuse && !net.dynamicBatch) continue;
        const three = rows(input, [0, 1, 0]);
        const out3 = runGraph(withInputShape(imported, three.shape), three);
        expect(maxAbsDiff(out3, rows(expected, [0, 1, 0])) / maxAbs(expected)).toBeLessThan(1e-4);
      }
    });
  }
});

/** The networks' shuffles: the paper's (g = 3), the official inverse (C/g), torchvision v2 (2). */
const expectedShuffles: Record<string, { count: number; groups: number[] }> = {
  shufflenet_v1_paper: { count: 6, groups: [3, 3, 3, 3, 3, 3] },
  shufflenet_v1_official: { count: 6, groups: [15 / 3, 15 / 3, 30 / 3, 30 / 3, 60 / 3, 60 / 3] },
  shufflenet_v2_x0_5: { count: 16, groups: new Array<number>(16).fill(2) },
};

/** The rows `indices` of a batch, stacked. */
function rows(t: Tensor, indices: number[]): Tensor {
  const per = t.size / t.shape[0]!;
  const out = new Tensor([indices.length, ...t.shape.slice(1)]);
  indices.forEach((r, i) => out.data.set(t.data.subarray(r * per, (r + 1) * per), i * per));
  return out;
}
