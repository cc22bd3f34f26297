/**
 * Complexity accounting: exact agreement with PyTorch forward-hook counts for every registered
 * network, and the paper's printed figures.
 */
import { describe, expect, it } from 'vitest';
import { complexity } from '../src/analysis/complexity.js';
import { complexityTable, layerBreakdown, paperComparison } from '../src/analysis/table.js';
import { createModel, modelNames } from '../src/models/registry.js';
import { ShuffleNetV2 } from '../src/models/shufflenet-v2.js';
import { loadJsonFixture } from './helpers/fixtures.js';

const torchCounts = loadJsonFixture<{ networks: Record<string, { macs: number; params: number }> }>(
  'complexity.json',
).networks;

describe('complexity', () => {
  it('registers the whole family: 100 ShuffleNets, 4 ShuffleNet V2s, 4 MobileNets, AlexNet', () => {
    const names = modelNames();
    expect(names.length).toBe(109);
    for (const g of [1, 2, 3, 4, 8]) {
      for (const s of ['0.25', '0.5', '1.0', '1.5', '2.0']) {
        for (const v of ['', '_noshuffle', '_se', '_shallow']) expect(names).toContain(`shufflenet_v1_g${g}_${s}x${v}`);
      }
    }
    expect(names).toEqual(
      expect.arrayContaining([
        'mobilenet_v1_0.25',
        'mobilenet_v1_0.5',
        'mobilenet_v1_0.75',
        'mobilenet_v1_1.0',
        'alexnet',
      ]),
    );
    expect(Object.keys(torchCounts).sort()).toEqual([...names].sort());
  });

  it('equals PyTorch forward-hook counts of multiply-adds and parameters for every network at 224×224', () => {
    const mismatches: string[] = [];
    for (const row of complexityTable(224)) {
      const torch = torchCounts[row.name]!;
      const macs = Math.round(row.mflops! * 1e6);
      if (macs !== torch.macs || row.params !== torch.params) {
        mismatches.push(
          `${row.name}: ours ${macs} MACs / ${row.params} params, PyTorch ${torch.macs} / ${torch.params}`,
        );
      }
    }
    expect(mismatches).toEqual([]);
  });

  it('reproduces every exactly printed figure to the printed digit, except the shallow network (widths unpublished)', () => {
    const exact = paperComparison().filter((c) => c.exact);
    expect(exact.length).toBe(19); // Table 1: 5, Table 5: 8, Table 6: 2; the V2 paper's Table 5: 4
    const misses = exact.filter((c) => !c.roundsToPaper).map((c) => c.name);
    expect(misses).toEqual(['shufflenet_v1_g3_0.5x_shallow']);
    const shallow = exact.find((c) => c.name === 'shufflenet_v1_g3_0.5x_shallow')!;
    expect(Math.abs(shallow.deviation)).toBeLessThan(0.05);
  });

  it("reproduces the V2 paper's Table 5 (41, 146, 299, 591), which rounds up, with the official code's widths", () => {
    const v2 = paperComparison().filter((c) => c.source === 'V2 paper, Table 5');
    expect(v2.map((c) => [c.name, c.paper, Math.ceil(c.ours)])).toEqual([
      ['shufflenet_v2_0.5x', 41, 41],
      ['shufflenet_v2_1.0x', 146, 146],
      ['shufflenet_v2_1.5x', 299, 299],
      ['shufflenet_v2_2.0x', 591, 591],
    ]);
    // torchvision's widths (each stride-2 branch makes half) differ in Stage 2's first unit only, at
    // 28×28 output: its branch1 1×1 is 24→58 instead of 24→24, its branch2's last 1×1 58→58
    // instead of 58→92, so it has 784·(24·24 + 58·92 − 24·58 − 58·58) = 906,304 fewer multiply-adds.
    const macs = (split: 'input' | 'half'): number =>
      complexity(new ShuffleNetV2({ scale: 1, stride2Split: split, initialize: false }).trace([1, 3, 224, 224])).macs;
    expect(macs('input') - macs('half')).toBe(906_304);
  });

  it('reproduces MobileNet exactly (Table 5: 569, 325, 149, 41)', () => {
    const expected: Record<string, number> = {
      'mobilenet_v1_1.0': 569,
      'mobilenet_v1_0.75': 325,
      'mobilenet_v1_0.5': 149,
      'mobilenet_v1_0.25': 41,
    };
    for (const row of complexityTable(224, Object.keys(expected)))
      expect(Math.round(row.mflops!)).toBe(expected[row.name]);
  });

  it('lands every class figure of Tables 2, 5, 6 within the spread the paper itself shows (±7%)', () => {
    const classes = paperComparison().filter((c) => !c.exact);
    expect(classes.length).toBeGreaterThanOrEqual(15);
    for (const c of classes) expect(Math.abs(c.deviation), `${c.source} ${c.name}`).toBeLessThan(0.07);
  });

  it('hand-computed ShuffleNet 1× g=3 (Table 1 widths) matches layer by layer', () => {
    const { layers } = layerBreakdown('shufflenet_v1_g3_1.0x');
    const macs = (name: string): number => layers.find((l) => l.name === name)!.macs;
    expect(macs('conv1')).toBe(3 * 3 * 3 * 24 * 112 * 112);
    expect(macs('stage2.0.gconv1')).toBe(24 * 60 * 56 * 56); // not grouped: only 24 inputs
    expect(macs('stage2.0.dwconv')).toBe(9 * 60 * 28 * 28);
    expect(macs('stage2.0.gconv2')).toBe((60 / 3) * (240 - 24) * 28 * 28);
    expect(macs('stage3.1.gconv1')).toBe((480 / 3) * 120 * 14 * 14);
    expect(macs('fc')).toBe(960 * 1000);
  });

  it('scales with the input size and the batch', () => {
    const model = createModel('shufflenet_v1_g3_1.0x', { initialize: false });
    const at224 = complexity(model.trace([1, 3, 224, 224])).macs;
    const fc = 960 * 1000;
    expect(complexity(model.trace([4, 3, 224, 224])).macs).toBe(4 * at224);
    expect(complexity(model.trace([1, 3, 448, 448])).macs - fc).toBe(4 * (at224 - fc));
  });

  it('counts parameters like PyTorch (BN running statistics are buffers)', () => {
    const model = createModel('shufflenet_v1_g3_1.0x', { initialize: false });
    let all = 0;
    for (const t of model.stateDict().values()) all += t.size;
    expect(model.parameterCount()).toBe(torchCounts['shufflenet_v1_g3_1.0x']!.params);
    expect(all).toBeGreaterThan(model.parameterCount());
  });
});
