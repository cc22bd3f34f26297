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
  /**
   * Where its int8 form comes from, for the UI: the int8 file the manifest pairs with its file
   * (`models/x-int8.safetensors`), or calibration in the worker on random images.
   */
  int8Source: string;
}

/** The precision the page runs: the float32 session, or the int8 plan (docs/int8.md). */
export type Precision = 'float32' | 'int8';

/** What ran one forward pass: the precision, its kernel build and its threads. */
export interface RunSummary {
  precision: Precision;
  /** The kernel build, e.g. 'WASM SIMD128' or 'WASM relaxed SIMD'. */
  kernels: string;
  threads: number;
  /** Why the int8 kernels are not the relaxed-SIMD build where the browser refused it, or ''. */
  notes: string;
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
  /** Later classifications run in `precision`; int8 loads the int8 library and the network's int8 form. */
  | { type: 'precision'; id: number; precision: Precision }
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
      /** From the precision of `run`. */
      top: Prediction[];
      /** Engine time of the forward pass alone. */
      latencyMs: number;
      run: RunSummary;
      preprocessMs: number;
      /** What the network sees: the preprocessed input tensor, CHW. */
      input: { width: number; height: number; channels: number; data: Float32Array };
    }
  | { type: 'benchmark-point'; id: number; point: BenchmarkPoint }
  | { type: 'benchmark-done'; id: number }
  | { type: 'error'; id: number; message: string };
