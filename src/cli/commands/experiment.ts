import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { subset, type ImageDataset } from '../../data/dataset.js';
import { ShuffleNetError } from '../../errors.js';
import {
  experimentNetworks,
  defaultGroups,
  formatDuration,
  normalizeScale,
  parseRunsFile,
  summarize,
  type ExperimentKind,
  type ExperimentSettings,
  type RunsFile,
} from '../../node/experiment/experiment.js';
import { renderExperimentChart } from '../../node/experiment/chart.js';
import { renderTable } from '../../node/experiment/report.js';
import { networkComplexity, runOne } from '../../node/experiment/run.js';
import { batchSize, positive, positiveInt, nonNegativeInt, threadCount } from '../args.js';
import { loadData } from '../data.js';
import { writeFileAtomic } from '../files.js';
import { balancedIndices, trainDefaults } from './train.js';

/**
 * Defaults: 0.25× (the paper's smallest row, 13 MFLOPs at 224², about 3.6 at 28² with the
 * small-input stem), 3 seeds, 3 epochs of 6,000 class-balanced images, the full 10,000-image test
 * split, and the train command's recipe (batch 32, lr 0.1 decaying linearly to 0).
 */
export const experimentDefaults = {
  scale: '0.25',
  seeds: 3,
  epochs: 3,
  maxTrain: 6000,
  data: 'fashion-mnist',
};

interface ExperimentFlags {
  scale: string;
  seeds: number;
  epochs: number;
  maxTrain: number;
  maxTest?: number;
  batch: number;
  lr: number;
  bnBatches: number;
  data: string;
  groups?: number[];
  out?: string;
  json: boolean;
  threads: number;
}

const groupList = (value: string): number[] => {
  const list = value.split(',').map((v) => Number(v.trim()));
  if (list.length === 0 || list.some((g) => !Number.isInteger(g) || g < 1)) {
    throw new InvalidArgumentError(`expected a comma-separated list of group numbers such as 1,3,8, got "${value}"`);
  }
  return list;
};

export function experimentCommand(): Command {
  return new Command('experiment')
    .description("re-run the paper's ablations on Fashion-MNIST: groups (Table 2) or shuffle (Table 3)")
    .addArgument(
      new Argument(
        '<kind>',
        'groups: g = 1, 2, 3, 4, 8 at one width; shuffle: g = 3, 8 with and without shuffle',
      ).choices(['groups', 'shuffle']),
    )
    .option('--scale <x>', 'width multiplier of every network (0.25, 0.5, 1.0, 1.5, 2.0)', experimentDefaults.scale)
    .option('--seeds <n>', 'runs per network, with seeds 0 … n−1', positiveInt, experimentDefaults.seeds)
    .option('--epochs <n>', 'epochs per run', positiveInt, experimentDefaults.epochs)
    .option('--max-train <n>', 'training images (class-balanced subset)', positiveInt, experimentDefaults.maxTrain)
    .option('--max-test <n>', 'test images (class-balanced subset; default: the whole test split)', positiveInt)
    .option('--batch <n>', 'mini-batch size', batchSize, 32)
    .option('--lr <x>', 'peak learning rate (linear decay to 0)', positive, trainDefaults.lr)
    .option('--bn-batches <n>', 'batches to re-estimate BN statistics with after training', nonNegativeInt, 20)
    .addOption(
      new Option('--data <name>', 'dataset').choices(['fashion-mnist', 'mnist']).default(experimentDefaults.data),
    )
    .option('--groups <list>', 'only these g, e.g. 1,3 (default: 1,2,3,4,8 for groups, 3,8 for shuffle)', groupList)
    .option('--out <dir>', 'results folder (runs.json, table.md, chart.svg); default results/experiments/<kind>')
    .option('--threads <n>', 'threads per training run (data-parallel; does not change the settings)', threadCount, 1)
    .option('--json', 'print the summary as JSON', false)
    .action(async (kind: ExperimentKind, flags: ExperimentFlags) => {
      await experiment(kind, flags);
    });
}

async function experiment(kind: ExperimentKind, flags: ExperimentFlags): Promise<void> {
  const start = performance.now();
  const scale = normalizeScale(flags.scale);
  const settings: ExperimentSettings = {
    kind,
    scale,
    data: flags.data,
    maxTrain: flags.maxTrain,
    maxTest: flags.maxTest ?? null,
    epochs: flags.epochs,
    batchSize: flags.batch,
    lr: flags.lr,
    momentum: trainDefaults.momentum,
    nesterov: true,
    weightDecay: trainDefaults.weightDecay,
    labelSmoothing: trainDefaults.labelSmoothing,
    schedule: trainDefaults.schedule,
    warmupEpochs: trainDefaults.warmupEpochs,
    maxGradNorm: trainDefaults.maxGradNorm,
    flip: flags.data !== 'mnist',
    padCrop: trainDefaults.padCrop,
    bnBatches: flags.bnBatches,
  };
  const networks = experimentNetworks(kind, scale, flags.groups ?? defaultGroups[kind]);
  const seeds = Array.from({ length: flags.seeds }, (_, i) => i);
  const dir = flags.out ?? join('results', 'experiments', kind);
  const runsPath = join(dir, 'runs.json');
  mkdirSync(dir, { recursive: true });

  let file: RunsFile;
  if (existsSync(runsPath)) {
    file = parseRunsFile(readFileSync(runsPath, 'utf8'), runsPath, settings);
  } else {
    file = { version: 1, settings, runs: [] };
    writeFileAtomic(runsPath, JSON.stringify(file, null, 1) + '\n');
  }
  const finished = (arch: string, seed: number) => file.runs.some((r) => r.arch === arch && r.seed === seed);
  // Seed-major: after the first seed every network has a result.
  const todo = seeds
    .flatMap((seed) => networks.map((network) => ({ network, seed })))
    .filter(({ network, seed }) => !finished(network.arch, seed));
  const total = networks.length * seeds.length;
  const resumed = total - todo.length;
  if (resumed > 0) {
    console.error(
      `resuming from ${runsPath}: ${resumed} of ${total} run(s) already finished, skipping them` +
        (todo.length ? `; ${todo.length} to go` : '; nothing left to train'),
    );
  }

  const imageShape: [number, number, number] = [1, 28, 28];
  const numClasses = 10;
  if (todo.length > 0) {
    const data = await loadSplits(flags.data, settings.maxTrain, settings.maxTest);
    console.error(
      `experiment ${kind}: ${networks.length} network(s) × ${seeds.length} seed(s) at ${Number(scale)}×, ` +
        `${data.train.length} training / ${data.test.length} test images, ${settings.epochs} epoch(s), batch ${settings.batchSize}, lr ${settings.lr}`,
    );
    let spent = 0;
    for (const [i, { network, seed }] of todo.entries()) {
      const runStart = performance.now();
      const record = await runOne(settings, network, seed, data, undefined, flags.threads);
      file.runs.push(record);
      writeFileAtomic(runsPath, JSON.stringify(file, null, 1) + '\n');
      spent += (performance.now() - runStart) / 1000;
      const left = todo.length - i - 1;
      const eta = left ? `; ETA ${formatDuration((spent / (i + 1)) * left)} for ${left} remaining run(s)` : '';
      console.error(
        `[${resumed + i + 1}/${total}] ${network.arch} seed ${seed}: error ${record.errorPercent.toFixed(2)}% ` +
          `(train loss ${record.trainLoss.toFixed(3)}), train ${formatDuration(record.trainSeconds)}, ` +
          `test ${formatDuration(record.evalSeconds)}${eta}`,
      );
    }
  }

  const complexities = new Map(networks.map((n) => [n.arch, networkComplexity(n.arch, imageShape, numClasses)]));
  const rows = summarize(scale, networks, seeds, file.runs, (arch) => complexities.get(arch)!);
  const wallSeconds = (performance.now() - start) / 1000;
  const testImages = file.runs[0]?.testImages ?? 0;
  const command = `shufflenet ${process.argv.slice(2).join(' ')}`;
  const table = renderTable({
    settings,
    rows,
    seeds,
    testImages,
    imageSize: imageShape.join('×'),
    wallSeconds,
    trainedNow: todo.length,
    resumed,
    command,
    date: new Date().toISOString(),
  });
  const tablePath = join(dir, 'table.md');
  writeFileAtomic(tablePath, table);
  const title =
    kind === 'groups'
      ? `Test error vs g, ShuffleNet ${Number(scale)}×, ${settings.data} (mean ± std, ${seeds.length} seeds)`
      : `Test error with and without shuffle, ShuffleNet ${Number(scale)}×, ${settings.data} (mean ± std, ${seeds.length} seeds)`;
  const chart = await renderExperimentChart(kind, title, rows, file.runs);
  const chartPath = join(dir, 'chart.svg');
  if (typeof chart === 'string') writeFileSync(chartPath, chart);
  else console.error(`note: ${chart.skipped}`);

  if (flags.json) {
    console.log(
      JSON.stringify(
        {
          kind,
          settings,
          seeds,
          rows,
          wallSeconds,
          trained: todo.length,
          resumed,
          files: { runs: runsPath, table: tablePath, ...(typeof chart === 'string' ? { chart: chartPath } : {}) },
        },
        null,
        1,
      ),
    );
  } else {
    console.log(table);
    console.log(
      `wall time ${formatDuration(wallSeconds)} → ${tablePath}${typeof chart === 'string' ? `, ${chartPath}` : ''}, ${runsPath}`,
    );
  }
}

async function loadSplits(
  spec: string,
  maxTrain: number,
  maxTest: number | null,
): Promise<{ train: ImageDataset; test: ImageDataset }> {
  const train = await loadData(spec, 'train');
  const test = await loadData(spec, 'test');
  if (train === null || test === null) throw new ShuffleNetError(`--data ${spec}: no training or test split`);
  const limit = (d: ImageDataset, n: number | null): ImageDataset =>
    n === null || n >= d.length ? d : subset(d, balancedIndices(d, n), `${d.name}[:${n}]`);
  return { train: limit(train.dataset, maxTrain), test: limit(test.dataset, maxTest) };
}
