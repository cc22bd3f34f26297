/**
 * Messages between the page and the worker that holds the models and their sessions. Everything that
 * computes lives in the worker; the page decodes images (it has the DOM) and draws results.
 */
import type { RawImage } from 'shufflenet/browser';

/** A network of the picker: ShuffleNet with `groups` and a width `scale` ('0.25', '0.5', '1.0'). */
export interface NetworkChoice {
  groups: number;
  scale: string;
}

export interface ModelSummary {
  /** Registry-style name, e.g. `shufflenet_v1_g3_0.5x`. */
  name: string;
  groups: number;
  scale: string;
  /** `file`: weights read from a model file next to the page; `random`: untrained, seeded weights. */
  weights: 'file' | 'random';
  /** Where the weights came from, for the UI: `models/x.safetensors` or `random, seed 0`. */
  source: string;
  /** Provenance stored in the model file (training command, accuracy), shown as is. */
  notes: Record<string, string | number>;
  labels: string[];
  /** Input tensor shape, batch included. */
  inputShape: number[];
  /** The preprocessing's resize (short side): images are shrunk on decode to twice it at most. */
  resize: number;
  /** Multiply-adds of one image, in millions (the paper's MFLOPs). */
  mflops: number;
  params: number;
}

/** What runs the networks: one library session per network, all asked for the same threads. */
export interface EngineSummary {
  /** The kernel build, e.g. 'WASM SIMD128' or 'WASM relaxed SIMD'. */
  kernels: string;
  /** Threads the session runs on (the page's worker plus threads − 1 helper workers). */
  threads: number;
  /** Threads the page asked for. */
  asked: number;
  /** The session's own account of running with fewer threads than asked, or ''. */
  notes: string;
}

export type Request =
  | { type: 'init'; id: number; baseUrl: string; threads: number }
  | { type: 'select'; id: number; network: NetworkChoice }
  | { type: 'classify'; id: number; image: RawImage; top: number }
  | { type: 'benchmark'; id: number; networks: NetworkChoice[]; runs: number };

export interface Prediction {
  index: number;
  label: string;
  probability: number;
}

export interface BenchmarkPoint {
  network: NetworkChoice;
  mflops: number;
  params: number;
  /** Median of `runsMs`. */
  medianMs: number;
  runsMs: number[];
}

export type Reply =
  | {
      type: 'ready';
      id: number;
      engine: EngineSummary;
      /** Networks that have a model file, in manifest order. */
      bundled: NetworkChoice[];
      choices: { groups: number[]; scales: string[] };
    }
  | { type: 'model'; id: number; model: ModelSummary }
  | {
      type: 'result';
      id: number;
      model: ModelSummary;
      top: Prediction[];
      /** Engine time of the forward pass alone. */
      latencyMs: number;
      preprocessMs: number;
      /** What the network sees: the preprocessed input tensor, CHW. */
      input: { width: number; height: number; channels: number; data: Float32Array };
    }
  | { type: 'benchmark-point'; id: number; point: BenchmarkPoint }
  | { type: 'benchmark-done'; id: number }
  | { type: 'error'; id: number; message: string };
