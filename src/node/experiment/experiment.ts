/**
 * The paper's ablations re-run on small data: Table 2 (the group number g at a fixed complexity)
 * and Table 3 (channel shuffle on or off). This file holds what an experiment *is* — its networks,
 * its settings, the paper's own figures, the record of finished runs and the statistics over seeds
 * — as plain data and pure functions; run.ts trains, report.ts and chart.ts write the results.
 *
 *   plan(kind, scale, groups) ─► [network × seed] ─► run.ts (Trainer, evaluate) ─► runs.json
 *                                                                                   │
 *                                         table.md, chart.svg ◄── summarize(runs) ◄─┘
 */
import { ShuffleNetError } from '../../errors.js';
import type { TrainConfig } from '../../train/trainer.js';

export type ExperimentKind = 'groups' | 'shuffle';
export const experimentKinds: readonly ExperimentKind[] = ['groups', 'shuffle'];

/**
 * Everything that decides one run's outcome apart from its network and seed. A results folder holds
 * runs of one settings object only: resuming with other settings is an error, never a silent mix.
 */
export interface ExperimentSettings extends Omit<TrainConfig, 'arch' | 'seed'> {
  kind: ExperimentKind;
  /** Width multiplier of every network, e.g. "0.25" (shufflenet_v1_g3_0.25x). */
  scale: string;
  /** Dataset: fashion-mnist or mnist. */
  data: string;
  /** Training images: a class-balanced subset of the fixed training split. */
  maxTrain: number;
  /** Test images: a class-balanced subset of the fixed test split (null: all of it). */
  maxTest: number | null;
}

/** One network of an experiment: a registered name and the two factors the tables vary. */
export interface ExperimentNetwork {
  arch: string;
  groups: number;
  shuffle: boolean;
}

/** One finished run: a network trained from seed `seed`, then tested on the fixed test split. */
export interface RunRecord {
  arch: string;
  groups: number;
  shuffle: boolean;
  seed: number;
  /** Top-1 test error in percent. */
  errorPercent: number;
  testImages: number;
  /** Training loss and accuracy of the last epoch. */
  trainLoss: number;
  trainAccuracy: number;
  /** Seconds spent in training steps (all epochs), then in BN re-estimation and testing. */
  trainSeconds: number;
  evalSeconds: number;
  finishedAt: string;
}

/** DIR/runs.json. */
export interface RunsFile {
  version: 1;
  settings: ExperimentSettings;
  runs: RunRecord[];
}

export const defaultGroups: Record<ExperimentKind, readonly number[]> = {
  groups: [1, 2, 3, 4, 8],
  shuffle: [3, 8],
};

/**
 * The networks of an experiment at one scale: Table 2 compares g = 1, 2, 3, 4, 8 (all with
 * shuffle); Table 3 compares each g without and with shuffle. `groups` may select a subset.
 */
export function experimentNetworks(
  kind: ExperimentKind,
  scale: string,
  groups: readonly number[] = defaultGroups[kind],
): ExperimentNetwork[] {
  const allowed = kind === 'groups' ? [1, 2, 3, 4, 8] : [2, 3, 4, 8];
  for (const g of groups) {
    if (!allowed.includes(g)) {
      throw new ShuffleNetError(
        `experiment ${kind}: g = ${g} is not one of ${allowed.join(', ')}` +
          (kind === 'shuffle' && g === 1 ? ' (with one group there is nothing to shuffle)' : ''),
      );
    }
  }
  const arch = (g: number, shuffle: boolean) => `shufflenet_v1_g${g}_${scale}x${shuffle ? '' : '_noshuffle'}`;
  if (kind === 'groups') return groups.map((g) => ({ arch: arch(g, true), groups: g, shuffle: true }));
  return groups.flatMap((g) => [
    { arch: arch(g, false), groups: g, shuffle: false },
    { arch: arch(g, true), groups: g, shuffle: true },
  ]);
}

/**
 * The paper's ImageNet top-1 classification error (%), Table 2 (with shuffle, by g) and Table 3
 * (without shuffle, g = 3 and 8), per scale. Another dataset and resolution than ours: the
 * comparison is of trends, not of values.
 */
const paperTable2: Record<string, Record<number, number>> = {
  '1.0': { 1: 33.6, 2: 32.7, 3: 32.6, 4: 32.8, 8: 32.4 },
  '0.5': { 1: 45.1, 2: 44.4, 3: 43.2, 4: 41.6, 8: 42.3 },
  '0.25': { 1: 57.1, 2: 56.8, 3: 55.0, 4: 54.2, 8: 52.7 },
};
const paperTable3NoShuffle: Record<string, Record<number, number>> = {
  '1.0': { 3: 34.5, 8: 37.6 },
  '0.5': { 3: 45.7, 8: 48.1 },
  '0.25': { 3: 56.3, 8: 56.5 },
};

/** The paper's error for a network of an experiment, or undefined where the paper prints none. */
export function paperError(scale: string, network: ExperimentNetwork): number | undefined {
  const table = network.shuffle ? paperTable2 : paperTable3NoShuffle;
  return table[normalizeScale(scale)]?.[network.groups];
}

/** "0.25", ".25" and "0.250" name the same registered scale; "1" is "1.0". */
export function normalizeScale(scale: string): string {
  const n = Number(scale);
  if (!Number.isFinite(n) || n <= 0) throw new ShuffleNetError(`--scale: expected a width multiplier, got "${scale}"`);
  return Number.isInteger(n) ? n.toFixed(1) : String(n);
}

/** Mean and sample standard deviation (n − 1; 0 for a single value). */
export function meanStd(values: readonly number[]): { mean: number; std: number } {
  if (values.length === 0) throw new ShuffleNetError('meanStd: no values');
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (values.length === 1) return { mean, std: 0 };
  const squares = values.reduce((a, v) => a + (v - mean) ** 2, 0);
  return { mean, std: Math.sqrt(squares / (values.length - 1)) };
}

/** One row of the results table: a network over its finished seeds. */
export interface SummaryRow extends ExperimentNetwork {
  seeds: number[];
  errorMean: number;
  errorStd: number;
  /** The paper's ImageNet top-1 error for the same g (and shuffle), where it prints one. */
  paperError?: number;
  params: number;
  /** Multiply-adds in millions for one image at the experiment's input size. */
  mflops: number;
  /** Mean seconds of training per run. */
  trainSeconds: number;
}

export function summarize(
  scale: string,
  networks: readonly ExperimentNetwork[],
  seeds: readonly number[],
  runs: readonly RunRecord[],
  complexityOf: (arch: string) => { params: number; mflops: number },
): SummaryRow[] {
  return networks.flatMap((network) => {
    const mine = runs.filter((r) => r.arch === network.arch && seeds.includes(r.seed));
    if (mine.length === 0) return [];
    const { mean, std } = meanStd(mine.map((r) => r.errorPercent));
    const paper = paperError(scale, network);
    return [
      {
        ...network,
        seeds: mine.map((r) => r.seed).sort((a, b) => a - b),
        errorMean: mean,
        errorStd: std,
        ...(paper !== undefined ? { paperError: paper } : {}),
        ...complexityOf(network.arch),
        trainSeconds: meanStd(mine.map((r) => r.trainSeconds)).mean,
      },
    ];
  });
}

/** The fields of two settings objects that differ, as "name: old → new". */
export function settingsDifferences(stored: ExperimentSettings, wanted: ExperimentSettings): string[] {
  const keys = new Set([...Object.keys(stored), ...Object.keys(wanted)]) as Set<keyof ExperimentSettings>;
  return [...keys]
    .filter((k) => JSON.stringify(stored[k]) !== JSON.stringify(wanted[k]))
    .map((k) => `${k}: ${JSON.stringify(stored[k])} → ${JSON.stringify(wanted[k])}`);
}

/**
 * Parses and checks runs.json text against the settings of this invocation. A file written with
 * other settings is refused, naming the differences and the way out.
 */
export function parseRunsFile(text: string, path: string, wanted: ExperimentSettings): RunsFile {
  let parsed: RunsFile;
  try {
    parsed = JSON.parse(text) as RunsFile;
  } catch (e) {
    throw new ShuffleNetError(`${path}: not JSON (${(e as Error).message}); move it away to start afresh`);
  }
  if (parsed?.version !== 1 || typeof parsed.settings !== 'object' || !Array.isArray(parsed.runs)) {
    throw new ShuffleNetError(`${path}: expected { version: 1, settings, runs } of an experiment's runs file`);
  }
  const differences = settingsDifferences(parsed.settings, wanted);
  if (differences.length > 0) {
    throw new ShuffleNetError(
      `${path} holds runs with other settings (${differences.join('; ')}); ` +
        'use the same flags to resume, or another --out folder for a new experiment',
    );
  }
  return parsed;
}

/** Seconds as "42 s", "3 min 05 s" or "1 h 02 min". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}
