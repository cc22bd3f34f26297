/**
 * Where the page's networks come from. A model file listed in `models/manifest.json` (next to the
 * page) provides trained weights with their labels and preprocessing; every other (g, scale) of the
 * picker is built from the registry with seeded random weights, and says so. Runs in the worker.
 * Int8 forms (an int8 file the manifest pairs with a model file, or calibration) are made by
 * ./int8.ts, which the worker loads only when the page switches to int8.
 */
import {
  complexity,
  createModel,
  FormatError,
  loadModelFile,
  preprocessingPresets,
  ShuffleNet,
  type Architecture,
  type Graph,
  type Module,
  type Preprocessing,
} from 'shufflenet/browser';
import { fashionMnistLabels } from './labels.js';
import type { ModelSummary, NetworkChoice } from './protocol.js';

/** The picker's choices: the paper's groups, and the widths small enough to measure in a few seconds. */
export const pickerGroups = [1, 2, 3, 4, 8];
export const pickerScales = ['0.25', '0.5', '1.0'];
/** Seed of the untrained networks, so that a page and a Node run give the same (meaningless) answer. */
export const randomSeed = 0;

/** How the worker makes a network's int8 form when no int8 file is paired with it. */
export const int8Calibration = { method: 'minmax', images: 8, seed: randomSeed } as const;
const calibrationText = `calibrated here on ${int8Calibration.images} random images (${int8Calibration.method}, seed ${int8Calibration.seed})`;

export interface Network {
  summary: ModelSummary;
  graph: Graph;
  preprocessing: Preprocessing;
  /** The model file's architecture (a random network: none), which its int8 file must repeat. */
  architecture?: Architecture;
  /** The int8 file the manifest pairs with the model file, relative to `models/`. */
  int8File?: string;
}

/** One model of `models/manifest.json`: a model file and, optionally, the same network in int8. */
export interface ManifestEntry {
  file: string;
  int8?: string;
}

export const networkKey = (n: NetworkChoice): string => `g${n.groups}_${n.scale}x`;

/** '0.5' for 0.5, '1.0' for 1: the spelling of the registry names. */
export const scaleName = (scale: number): string => (Number.isInteger(scale) ? scale.toFixed(1) : String(scale));

/** The models the manifest lists (paths relative to `models/`); none when there is no manifest. */
export async function fetchManifest(baseUrl: string): Promise<ManifestEntry[]> {
  const url = new URL('models/manifest.json', baseUrl);
  const response = await fetch(url);
  if (response.status === 404) return [];
  if (!response.ok) throw new FormatError(`models/manifest.json: HTTP ${response.status}`);
  let manifest: unknown;
  try {
    manifest = await response.json();
  } catch {
    throw new FormatError('models/manifest.json: not valid JSON');
  }
  const models = (manifest as { models?: unknown } | null)?.models;
  const isEntry = (m: unknown): m is ManifestEntry => {
    const { file, int8 } = (m ?? {}) as { file?: unknown; int8?: unknown };
    return typeof file === 'string' && (int8 === undefined || typeof int8 === 'string');
  };
  if (!Array.isArray(models) || !models.every(isEntry)) {
    throw new FormatError(
      'models/manifest.json: expected { "models": [{ "file": "name.safetensors", "int8": "name-int8.safetensors" }, …] } ("int8" optional)',
    );
  }
  return models.map(({ file, int8 }) => (int8 === undefined ? { file } : { file, int8 }));
}

/** Fetches and rebuilds one model file (our safetensors format, src/io/modelfile.ts). */
export async function fetchModelFile(baseUrl: string, entry: ManifestEntry): Promise<Network> {
  const { file } = entry;
  const source = `models/${file}`;
  const response = await fetch(new URL(source, baseUrl));
  if (!response.ok) throw new FormatError(`${source}: HTTP ${response.status} (listed in models/manifest.json)`);
  const { model, info } = loadModelFile(new Uint8Array(await response.arrayBuffer()), source);
  if (!(model instanceof ShuffleNet)) {
    throw new FormatError(`${source}: holds a ${info.architecture.family} network; the page shows ShuffleNets only`);
  }
  if (info.preprocessing === undefined || info.labels === undefined) {
    throw new FormatError(`${source}: the page needs the file's preprocessing and labels, and this file lacks them`);
  }
  // loadModelFile has checked one label per class.
  const choice = { groups: model.config.groups, scale: scaleName(model.config.scale) };
  const int8Source =
    entry.int8 !== undefined ? `models/${entry.int8}` : `${calibrationText}; no int8 file in the manifest`;
  return {
    ...network(model, choice, info.preprocessing, info.labels, {
      weights: 'file',
      source,
      notes: info.notes ?? {},
      int8Source,
    }),
    architecture: info.architecture,
    ...(entry.int8 !== undefined ? { int8File: entry.int8 } : {}),
  };
}

/** A registry ShuffleNet for 28×28 grayscale input with seeded random weights. */
export function randomNetwork(choice: NetworkChoice): Network {
  const model = createModel(`shufflenet_v1_g${choice.groups}_${choice.scale}x`, {
    numClasses: fashionMnistLabels.length,
    inputChannels: 1,
    smallInput: true,
    seed: randomSeed,
  });
  return network(model, choice, preprocessingPresets.mnist, [...fashionMnistLabels], {
    weights: 'random',
    source: `random, seed ${randomSeed}`,
    notes: {},
    int8Source: `${calibrationText}; weights are random`,
  });
}

function network(
  model: Module,
  choice: NetworkChoice,
  preprocessing: Preprocessing,
  labels: string[],
  origin: Pick<ModelSummary, 'weights' | 'source' | 'notes' | 'int8Source'>,
): Network {
  const channels = preprocessing.channels === 'gray' ? 1 : 3;
  const inputShape = [1, channels, preprocessing.crop, preprocessing.crop];
  const graph = model.trace(inputShape);
  const cost = complexity(graph);
  return {
    graph,
    preprocessing,
    summary: {
      name: `shufflenet_v1_${networkKey(choice)}`,
      ...choice,
      ...origin,
      labels,
      inputShape,
      resize: preprocessing.resize,
      mflops: cost.macs / 1e6,
      params: cost.params,
    },
  };
}
