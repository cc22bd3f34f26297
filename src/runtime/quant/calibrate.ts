/**
 * Post-training calibration: runs the float network (the reference executor, the semantics the
 * scales must fit) on sample images and chooses each calibrated value's range.
 *
 * Methods:
 * - `minmax`: the exact minimum and maximum over every image.
 * - `percentile`: the `percentile`-th and (100 − percentile)-th percentiles of the sampled values
 *   (outliers clipped).
 * - `mse`: of the ranges [α·min, α·max] for α = 1, 0.98, …, 0.30, the one whose quantize-dequantize
 *   error over the sampled values is least.
 *
 * Each value keeps an evenly spaced sample of at most `sampleSize` values spread over the images
 * (a fixed stride per image), so memory stays bounded whatever the image count; min and max are
 * exact.
 */
import type { Graph } from '../../graph/graph.js';
import { runGraph } from '../../graph/execute.js';
import { clampU8, roundHalfEven, type QParams } from '../../kernels/reference/quantized.js';
import type { Tensor } from '../../tensor/tensor.js';
import { lowerForInference, type LoweredStep } from '../lower.js';
import {
  chooseQParams,
  QuantizationError,
  quantizationPoints,
  quantizeNetwork,
  type QuantizedNetwork,
  type WeightBits,
} from './network.js';

export const calibrationMethods = ['minmax', 'percentile', 'mse'] as const;
export type CalibrationMethod = (typeof calibrationMethods)[number];

export interface CalibrationOptions {
  method: CalibrationMethod;
  /** Images the caller will observe (spreads each value's sample over them). */
  images: number;
  /** For `percentile`: the upper percentile kept, in (50, 100]; default 99.99. */
  percentile?: number;
  /** Values kept per calibrated tensor; default 65,536. */
  sampleSize?: number;
  /** The weights' range: 8 bits (default) or 7 (see WeightBits). */
  weightBits?: WeightBits;
}

interface Observed {
  min: number;
  max: number;
  sample: number[];
}

/**
 * Collects statistics image by image (`observe`), then gives the quantized network (`finish`).
 *
 * @example
 * const calibrator = new Calibrator(graph, { method: 'minmax', images: images.length });
 * for (const image of images) calibrator.observe(image);
 * const network = calibrator.finish();
 */
export class Calibrator {
  private readonly stats = new Map<string, Observed>();
  /** The lowering's steps: which values are calibrated, then the network's steps. */
  private readonly steps: LoweredStep[];
  private readonly perImage: number;
  private seen = 0;

  constructor(
    readonly graph: Graph,
    readonly options: CalibrationOptions,
  ) {
    this.steps = lowerForInference(graph);
    if (!calibrationMethods.includes(options.method)) {
      throw new QuantizationError(
        `calibration method ${JSON.stringify(options.method)} is not one of ${calibrationMethods.join(', ')}`,
      );
    }
    const p = options.percentile ?? 99.99;
    if (options.method === 'percentile' && !(p > 50 && p <= 100)) {
      throw new QuantizationError(`percentile is ${p}; expected a number in (50, 100]`);
    }
    if (options.weightBits !== undefined && options.weightBits !== 7 && options.weightBits !== 8) {
      throw new QuantizationError(`weight bits is ${String(options.weightBits)}; expected 7 or 8`);
    }
    if (!Number.isInteger(options.images) || options.images < 1) {
      throw new QuantizationError(`calibration needs at least one image, got ${options.images}`);
    }
    for (const point of quantizationPoints(graph, this.steps)) {
      if (point.kind === 'calibrated') this.stats.set(point.value, { min: Infinity, max: -Infinity, sample: [] });
    }
    this.perImage = Math.max(1, Math.ceil((options.sampleSize ?? 65_536) / options.images));
  }

  /** Runs one input (the graph's traced shape) and records every calibrated value. */
  observe(input: Tensor): void {
    const image = this.seen++;
    runGraph(this.graph, input, (value, tensor) => {
      const s = this.stats.get(value);
      if (s === undefined) return;
      const data = tensor.data;
      for (let i = 0; i < data.length; i++) {
        const v = data[i]!;
        if (v < s.min) s.min = v;
        if (v > s.max) s.max = v;
      }
      const stride = Math.max(1, Math.floor(data.length / this.perImage));
      // A different phase per image, so that a fixed stride does not always sample the same pixels.
      for (
        let i = (image * 7919) % stride;
        i < data.length && s.sample.length < (image + 1) * this.perImage;
        i += stride
      ) {
        s.sample.push(data[i]!);
      }
    });
  }

  /** The calibrated scale and zero point of every calibrated value. */
  scales(): Map<string, QParams> {
    if (this.seen === 0) throw new QuantizationError('calibration observed no images');
    const out = new Map<string, QParams>();
    for (const [value, s] of this.stats) {
      if (!Number.isFinite(s.min) || !Number.isFinite(s.max)) {
        throw new QuantizationError(`value ${JSON.stringify(value)} took non-finite values during calibration`);
      }
      out.set(value, this.range(s));
    }
    return out;
  }

  finish(): QuantizedNetwork {
    return quantizeNetwork(this.graph, this.scales(), this.steps, this.options.weightBits ?? 8);
  }

  private range(s: Observed): QParams {
    switch (this.options.method) {
      case 'minmax':
        return chooseQParams(s.min, s.max);
      case 'percentile': {
        const sorted = Float64Array.from(s.sample).sort();
        const p = (this.options.percentile ?? 99.99) / 100;
        const at = (f: number): number =>
          sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(f * (sorted.length - 1))))]!;
        return chooseQParams(p === 1 ? s.min : at(1 - p), p === 1 ? s.max : at(p));
      }
      case 'mse': {
        let best = chooseQParams(s.min, s.max);
        let bestError = Infinity;
        for (let step = 0; step <= 35; step++) {
          const alpha = 1 - step * 0.02;
          const p = chooseQParams(s.min * alpha, s.max * alpha);
          let error = 0;
          for (const v of s.sample) {
            const q = clampU8(roundHalfEven(Math.fround(v / p.scale)) + p.zeroPoint);
            error += (p.scale * (q - p.zeroPoint) - v) ** 2;
          }
          if (error < bestError) {
            bestError = error;
            best = p;
          }
        }
        return best;
      }
    }
  }
}
