import { Command, Option } from 'commander';
import { fieldParser, positiveInt, threadCount } from '../args.js';
import cliProgress from 'cli-progress';
import { existsSync } from 'node:fs';
import { toFloat, type ImageTransform } from '../../data/batches.js';
import type { ImageDataset } from '../../data/dataset.js';
import { trainHead } from '../../train/head.js';
import { subset } from '../../data/dataset.js';
import { augment } from '../../data/transforms.js';
import { FormatError, ShuffleNetError } from '../../errors.js';
import { checkFields, FieldError } from '../../validate.js';
import { loadModelFile, saveModelFile, type ModelInfo } from '../../io/modelfile.js';
import { preprocessingPresets } from '../../data/preprocessing.js';
import {
  architectureOf,
  createModel,
  getModelEntry,
  imageModelOptions,
  modelNames,
  type Architecture,
} from '../../models/registry.js';
import { loadModel } from '../../io/load.js';
import { fineTuneModel } from '../../train/finetune.js';
import type { Module } from '../../nn/module.js';
import { reestimateBatchNorm } from '../../train/batchnorm.js';
import { evaluateOnPlan } from '../../train/evaluate.js';
import {
  NonFiniteLossError,
  Trainer,
  type TrainConfig,
  type EngineKind,
  type TrainState,
  optionalTrainConfigFields,
  trainConfigFields,
  trainStateFields,
} from '../../train/trainer.js';
import { batches } from '../../data/batches.js';
import { spawnTrainingWorker } from '../../node/session.js';
import { loadData } from '../data.js';
import { checkOutputPath, readFileOrFail, writeFileAtomic } from '../files.js';
import { printable } from '../format.js';

/**
 * Defaults, tuned for 28×28 Fashion-MNIST (docs/training.md): the paper's linear decay to 0, SGD
 * with Nesterov momentum 0.9, label smoothing 0.1, weight decay 4e-5 on weights only, batch 16 at
 * a peak learning rate of 0.1. One epoch of 6,000 images with g3 0.25× (WASM engine): batch 32 at
 * lr 0.05 / 0.1 / 0.2 reached 72.0 / 73.7 / 71.5%, batch 16 at lr 0.05 / 0.1 reached 76.1 / 77.0%
 * (more, smaller steps win in a short run). Longer runs want bigger batches: see the README recipe.
 */
export const trainDefaults = {
  arch: 'shufflenet_v1_g3_0.5x',
  data: 'fashion-mnist',
  epochs: 1,
  batch: 16,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 4e-5,
  labelSmoothing: 0.1,
  schedule: 'linear' as const,
  warmupEpochs: 0,
  maxGradNorm: 5,
  padCrop: 2,
  bnBatches: 20,
  seed: 0,
};

interface TrainFlags {
  arch: string;
  data: string;
  epochs: number;
  batch: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  labelSmoothing: number;
  schedule: TrainConfig['schedule'];
  warmupEpochs: number;
  maxGradNorm: number;
  flip?: boolean;
  padCrop: number;
  bnBatches: number;
  maxTrain?: number;
  seed: number;
  threads: number;
  engine: EngineKind;
  out: string;
  resume: boolean;
  evalEachEpoch: boolean;
  init?: string;
  newHead: boolean;
  freeze: 'none' | 'backbone';
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a network on Fashion-MNIST, MNIST or an image folder, with checkpoints every epoch')
    .option('--arch <name>', 'network (the small-input stem is used for 28×28 and 32×32 data)', trainDefaults.arch)
    .option(
      '--data <source>',
      'fashion-mnist, mnist, or a folder (train/ and test/ with a folder per class)',
      trainDefaults.data,
    )
    .option('--epochs <n>', 'epochs', field('epochs'), trainDefaults.epochs)
    .option('--batch <n>', 'mini-batch size', field('batchSize'), trainDefaults.batch)
    .option('--lr <x>', 'peak learning rate', field('lr'), trainDefaults.lr)
    .option('--momentum <x>', 'SGD momentum', field('momentum'), trainDefaults.momentum)
    .option('--no-nesterov', 'plain momentum instead of Nesterov')
    .option(
      '--weight-decay <x>',
      'L2 weight decay on weights with more than one dimension',
      field('weightDecay'),
      trainDefaults.weightDecay,
    )
    .option(
      '--label-smoothing <x>',
      'label smoothing of the cross-entropy',
      field('labelSmoothing'),
      trainDefaults.labelSmoothing,
    )
    .addOption(
      new Option('--schedule <kind>', 'learning-rate schedule')
        .choices(['linear', 'cosine', 'constant'])
        .default(trainDefaults.schedule),
    )
    .option('--warmup-epochs <x>', 'epochs of linear warm-up', field('warmupEpochs'), trainDefaults.warmupEpochs)
    .option(
      '--max-grad-norm <x>',
      'clip the global gradient norm (0: off)',
      field('maxGradNorm'),
      trainDefaults.maxGradNorm,
    )
    .option('--flip', 'augment with left–right flips (default: on for fashion-mnist and folders, off for mnist)')
    .option('--no-flip', 'no flips')
    .option('--pad-crop <n>', 'augment with random shifts of up to n pixels', field('padCrop'), trainDefaults.padCrop)
    .option(
      '--bn-batches <n>',
      'training batches to re-estimate BN statistics with at the end (0: skip)',
      field('bnBatches'),
      trainDefaults.bnBatches,
    )
    .option('--max-train <n>', 'use only the first n training images (a per-class balanced subset)', positiveInt)
    .option('--seed <n>', 'seed of weights, data order and augmentation', field('seed'), trainDefaults.seed)
    .option('--threads <n>', 'threads: the batch is split over them, batch norm still sees all of it', threadCount, 1)
    .addOption(
      new Option(
        '--engine <kind>',
        'wasm: the WASM SIMD training plan; reference: the reference tape (slow, the oracle)',
      )
        .choices(['wasm', 'reference'])
        .default('wasm'),
    )
    .requiredOption('--out <file>', 'model file; written atomically after every epoch and at the end')
    .option('--resume', 'continue the run checkpointed in --out', false)
    .option('--eval-each-epoch', 'measure test accuracy after every epoch', false)
    .option(
      '--init <file>',
      'fine-tune: start from this model file, PyTorch checkpoint or exported ONNX file (its network and weights; --arch is not used)',
    )
    .option('--new-head', "with --init: a new classifier for the data's classes", false)
    .addOption(
      new Option(
        '--freeze <part>',
        'with --init: backbone trains only the classifier, on features of the frozen trunk computed once per image (no augmentation)',
      )
        .choices(['none', 'backbone'])
        .default('none'),
    )
    .action(async (flags: TrainFlags, command: Command) => {
      const given = new Set(
        command.options.map((o) => o.attributeName()).filter((name) => command.getOptionValueSource(name) === 'cli'),
      );
      await train(flags, given);
    });
}

/** The flags that map one to one onto a TrainConfig field (the CLI's name → the config's). */
const configFlags: readonly (readonly [keyof TrainFlags, keyof TrainConfig, string])[] = [
  ['arch', 'arch', '--arch'],
  ['batch', 'batchSize', '--batch'],
  ['lr', 'lr', '--lr'],
  ['momentum', 'momentum', '--momentum'],
  ['nesterov', 'nesterov', '--no-nesterov'],
  ['weightDecay', 'weightDecay', '--weight-decay'],
  ['labelSmoothing', 'labelSmoothing', '--label-smoothing'],
  ['schedule', 'schedule', '--schedule'],
  ['warmupEpochs', 'warmupEpochs', '--warmup-epochs'],
  ['maxGradNorm', 'maxGradNorm', '--max-grad-norm'],
  ['flip', 'flip', '--flip/--no-flip'],
  ['padCrop', 'padCrop', '--pad-crop'],
  ['bnBatches', 'bnBatches', '--bn-batches'],
  ['seed', 'seed', '--seed'],
  ['init', 'init', '--init'],
  ['newHead', 'newHead', '--new-head'],
];

/** A numeric flag with the range of its TrainConfig field. */
function field(name: keyof TrainConfig): (value: string) => number {
  return fieldParser(trainConfigFields[name]!);
}

/** A checkpoint's training config and state, every field checked (they come from a file). */
function checkedTraining(
  training: NonNullable<ModelInfo['training']>,
  source: string,
): { config: TrainConfig; state: TrainState } {
  try {
    const required = Object.keys(trainConfigFields).filter(
      (k) => !(optionalTrainConfigFields as readonly string[]).includes(k),
    );
    checkFields(training.config, trainConfigFields, 'training.config', required);
    checkFields(training.state, trainStateFields, 'training.state', ['epoch', 'step', 'history']);
  } catch (e) {
    if (e instanceof FieldError) throw new FormatError(`${source}: ${e.message}`);
    throw e;
  }
  const config = training.config as unknown as TrainConfig;
  // A registered name, or an UnknownNameError; a fine-tuned network may be an imported one.
  if (config.init === undefined) getModelEntry(config.arch);
  return { config, state: training.state as TrainState };
}

/** --resume continues a run with its own settings: a flag that would change one is refused, not ignored. */
function refuseChangedSettings(config: TrainConfig, flags: TrainFlags, given: ReadonlySet<string>): void {
  for (const [flag, key, name] of configFlags) {
    if (given.has(flag) && flags[flag] !== config[key]) {
      throw new ShuffleNetError(
        `--resume continues the run with its own settings: ${name} ${String(flags[flag])} differs from its ` +
          `${String(config[key])} (only --epochs may change; start a new run for other settings)`,
      );
    }
  }
}

async function train(flags: TrainFlags, given: ReadonlySet<string> = new Set()): Promise<void> {
  // Before any epoch: a checkpoint that could not be written would lose the whole epoch.
  checkOutputPath(flags.out, '--out');
  const trainData = await loadData(flags.data, 'train');
  const testData = await loadData(flags.data, 'test');
  if (trainData === null) throw new ShuffleNetError(`--data ${flags.data}: no training images`);
  // Both splits may carry the same note (one package file behind both): say it once.
  for (const w of new Set([trainData.warning, testData?.warning])) if (w) console.error(`note: ${printable(w, 500)}`);
  let dataset = trainData.dataset;
  if (flags.maxTrain !== undefined && flags.maxTrain < dataset.length) {
    // A balanced subset: the first images of each class, interleaved, so every class is present.
    dataset = subset(dataset, balancedIndices(dataset, flags.maxTrain), `${dataset.name}[:${flags.maxTrain}]`);
  }
  const [channels, size] = [dataset.imageShape[0], dataset.imageShape[1]];
  const flip = flags.flip ?? flags.data !== 'mnist';

  let model: Module;
  /** The network as built: a fine-tuned one's comes from its --init file, not from a registered name. */
  let architecture: Architecture | undefined;
  let config: TrainConfig;
  let state: TrainState | undefined;
  let momentum: Map<string, Float32Array> | undefined;
  if (flags.resume) {
    if (!existsSync(flags.out)) throw new ShuffleNetError(`--resume: there is no checkpoint at ${flags.out}`);
    const loaded = loadModelFile(readFileOrFail(flags.out, 'checkpoint'), flags.out);
    if (!loaded.info.training)
      throw new ShuffleNetError(`--resume: ${flags.out} is a model file without training state`);
    model = loaded.model;
    architecture = loaded.info.architecture;
    ({ config, state } = checkedTraining(loaded.info.training, flags.out));
    refuseChangedSettings(config, flags, given);
    if (config.freeze === 'backbone' && given.has('epochs') && flags.epochs !== config.epochs) {
      throw new ShuffleNetError(
        `--resume: ${flags.out} trained its classifier on a frozen trunk in one go; rerun it with more --epochs instead`,
      );
    }
    if (given.has('epochs')) config = { ...config, epochs: flags.epochs };
    if (state.epoch > config.epochs) {
      throw new ShuffleNetError(
        `--resume: ${flags.out} has ${state.epoch} epochs done; --epochs ${config.epochs} cannot undo them`,
      );
    }
    const finished = state.finished ?? loaded.info.notes?.['testAccuracy'] !== undefined; // older files: the final test ran
    if (finished && state.epoch === config.epochs && config.freeze === 'backbone') {
      console.error(
        `--resume: the run in ${flags.out} is finished (its classifier trained on a frozen trunk, tested); ` +
          'nothing to do, the file is left as it is.',
      );
      return;
    }
    if (finished && state.epoch === config.epochs) {
      console.error(
        `--resume: the run in ${flags.out} is finished (${state.epoch} of ${config.epochs} epochs, batch-norm ` +
          're-estimated, tested); nothing to do, the file is left as it is. To train it further, give --epochs ' +
          `with more than ${config.epochs}.`,
      );
      return;
    }
    momentum = loaded.optimizer;
    console.error(
      state.epoch === config.epochs
        ? `resuming ${config.arch} from ${flags.out}: all ${config.epochs} epochs done, finishing the run`
        : `resuming ${config.arch} from ${flags.out}: epoch ${state.epoch} of ${config.epochs} done`,
    );
  } else {
    config = {
      arch: flags.arch,
      epochs: flags.epochs,
      batchSize: flags.batch,
      lr: flags.lr,
      momentum: flags.momentum,
      nesterov: flags.nesterov,
      weightDecay: flags.weightDecay,
      labelSmoothing: flags.labelSmoothing,
      schedule: flags.schedule,
      warmupEpochs: flags.warmupEpochs,
      maxGradNorm: flags.maxGradNorm,
      flip,
      padCrop: flags.padCrop,
      bnBatches: flags.bnBatches,
      seed: flags.seed,
    };
    if (flags.newHead && flags.init === undefined) throw new ShuffleNetError('--new-head applies to --init only');
    if (flags.freeze === 'backbone' && flags.init === undefined) {
      throw new ShuffleNetError('--freeze backbone applies to --init only (a random trunk has nothing to keep)');
    }
    if (flags.init !== undefined) {
      const from = loadModel(readFileOrFail(flags.init, 'model'), flags.init);
      if (from.module === undefined || from.info?.architecture === undefined) {
        throw new ShuffleNetError(
          `--init ${printable(flags.init)}: ${from.description} is an imported graph, not one of our networks; ` +
            'fine-tuning starts from our model files, PyTorch checkpoints of the networks we build, and ONNX files ' +
            'that `shufflenet export` wrote',
        );
      }
      const source = { module: from.module, architecture: from.info.architecture, source: flags.init };
      const target = { numClasses: dataset.classes.length, inputChannels: channels, size, seed: flags.seed };
      const tuned = fineTuneModel(source, target, flags.newHead);
      model = tuned.model;
      architecture = tuned.architecture;
      config = { ...config, arch: from.info.arch ?? from.info.architecture.family, init: flags.init };
      if (flags.newHead) config.newHead = true;
      if (flags.freeze === 'backbone') config.freeze = 'backbone';
      console.error(
        `fine-tuning from ${printable(flags.init)} (${architecture.family}${from.info.arch ? `, ${from.info.arch}` : ''})` +
          (flags.newHead ? `: a new classifier (${tuned.head.join(', ')}) for ${dataset.classes.length} classes` : ''),
      );
    } else {
      model = createModel(config.arch, imageModelOptions(dataset.classes.length, channels, size, config.seed));
    }
  }
  const options = imageModelOptions(dataset.classes.length, channels, size, config.seed);
  const preprocessing =
    channels === 1 ? preprocessingPresets.mnist : { ...preprocessingPresets.imagenet, resize: size, crop: size };
  const info = (training?: ModelInfo['training']): ModelInfo => ({
    architecture: architecture ?? architectureOf(config.arch, options),
    // A network fine-tuned from an imported checkpoint may have no registered name.
    ...(modelNames().includes(config.arch) ? { arch: config.arch } : {}),
    preprocessing,
    labels: [...dataset.classes],
    notes: {
      data: trainData.name,
      trainImages: dataset.length,
      ...(config.init !== undefined ? { init: config.init, head: config.newHead ? 'new' : 'kept' } : {}),
      ...(config.freeze !== undefined ? { freeze: config.freeze } : {}),
      command: `shufflenet ${process.argv.slice(2).join(' ')}`,
    },
    ...(training ? { training } : {}),
  });
  if (config.freeze === 'backbone' && state === undefined) {
    await trainFrozen(
      model,
      dataset,
      testData,
      config,
      info,
      flags.out,
      toFloat(preprocessing.mean, preprocessing.std),
    );
    return;
  }
  const transform = augment({
    flip: config.flip,
    padCrop: config.padCrop,
    mean: preprocessing.mean,
    std: preprocessing.std,
  });
  const trainer = await new Trainer(model, dataset, config, transform, state, momentum).prepare({
    engine: flags.engine,
    threads: flags.threads,
    spawnWorker: spawnTrainingWorker,
  });
  const evalTransform = toFloat(preprocessing.mean, preprocessing.std);
  /** Checkpoints the run; `finished` once its last steps (BN re-estimation, the test) are done too. */
  const save = (finished = false, notes: ModelInfo['notes'] = {}): void => {
    const saved = info({ config: { ...config }, state: { ...trainer.state, finished } });
    saved.notes = { ...saved.notes, ...notes };
    writeFileAtomic(flags.out, saveModelFile(model, saved, trainer.sgd.state()));
  };

  console.error(
    `training ${config.arch} on ${dataset.length} ${printable(dataset.name)} images (${channels}×${size}×${size}, ${dataset.classes.length} classes), ` +
      `${config.epochs} epoch(s) of ${trainer.stepsPerEpoch} steps, batch ${config.batchSize}, lr ${config.lr} ${config.schedule}`,
  );
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        {
          format:
            'epoch {epoch}/{epochs} [{bar}] {value}/{total} | loss {loss} | acc {acc} | {ips} img/s | ETA {eta_formatted}',
          hideCursor: true,
          etaBuffer: 20,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  try {
    while (!trainer.done) {
      bar?.start(trainer.stepsPerEpoch, 0, {
        epoch: trainer.state.epoch + 1,
        epochs: config.epochs,
        loss: '-',
        acc: '-',
        ips: '-',
      });
      let record;
      try {
        record = trainer.runEpoch((p) =>
          bar?.update(p.batch, {
            loss: p.loss.toFixed(4),
            acc: (p.accuracy * 100).toFixed(1) + '%',
            ips: p.imagesPerSecond.toFixed(0),
          }),
        );
      } catch (e) {
        bar?.stop();
        if (e instanceof NonFiniteLossError) {
          const kept = existsSync(flags.out)
            ? `the last good checkpoint (${flags.out}) is kept`
            : 'no checkpoint was written';
          throw new NonFiniteLossError(`${e.message}; ${kept}`);
        }
        throw e;
      }
      bar?.stop();
      if (flags.evalEachEpoch && testData) {
        record.testAccuracy = (await evaluateOnPlan(model, testData.dataset, { transform: evalTransform })).accuracy;
      }
      save();
      console.error(
        `epoch ${record.epoch}/${config.epochs}: loss ${record.loss.toFixed(4)}, train accuracy ${(record.accuracy * 100).toFixed(2)}%` +
          (record.testAccuracy !== undefined ? `, test accuracy ${(record.testAccuracy * 100).toFixed(2)}%` : '') +
          `, ${record.imagesPerSecond.toFixed(0)} img/s, ${record.seconds.toFixed(0)} s → ${flags.out}`,
      );
    }
    if (config.bnBatches > 0) {
      const stream = batches(dataset, {
        batchSize: config.batchSize,
        shuffle: true,
        dropLast: true,
        seed: config.seed + 1,
        transform: evalTransform,
      });
      const inputs = (function* () {
        let k = 0;
        for (const b of stream) {
          if (k++ >= config.bnBatches) return;
          yield b.input;
        }
      })();
      const seen = reestimateBatchNorm(model, inputs, trainer.plan);
      console.error(`re-estimated batch-norm statistics on ${seen} batch(es)`);
    }
    await testAndSave(model, testData, evalTransform, flags.out, (notes) => save(true, notes));
  } finally {
    await trainer.dispose();
  }
}

/**
 * `--freeze backbone`: the classifier alone learns on cached features of the frozen trunk
 * (src/train/head.ts); the trunk's batch norms keep their statistics. One write at the end: the
 * run takes seconds, and an interrupted one is simply rerun.
 */
async function trainFrozen(
  model: Module,
  dataset: ImageDataset,
  testData: { dataset: ImageDataset; name: string } | null,
  config: TrainConfig,
  info: (training?: ModelInfo['training']) => ModelInfo,
  out: string,
  transform: ImageTransform,
): Promise<void> {
  console.error(
    `training the classifier of ${config.arch} on cached features of its frozen trunk: ${dataset.length} ` +
      `${printable(dataset.name)} images, ${config.epochs} epoch(s), batch ${config.batchSize}, lr ${config.lr} ${config.schedule}`,
  );
  const records = await trainHead(model, dataset, transform, config, (e) =>
    console.error(
      `epoch ${e.epoch}/${config.epochs}: loss ${e.loss.toFixed(4)}, train accuracy ${(e.accuracy * 100).toFixed(2)}%, ${e.seconds.toFixed(1)} s`,
    ),
  );
  const history = records.map((r) => ({
    epoch: r.epoch,
    loss: r.loss,
    accuracy: r.accuracy,
    lr: config.lr,
    seconds: r.seconds,
    imagesPerSecond: r.seconds > 0 ? dataset.length / r.seconds : 0,
  }));
  const state: TrainState = { epoch: config.epochs, step: records.at(-1)!.step, history, finished: true };
  await testAndSave(model, testData, transform, out, (notes) => {
    const saved = info({ config: { ...config }, state });
    saved.notes = { ...saved.notes, ...notes };
    writeFileAtomic(out, saveModelFile(model, saved));
  });
}

/** The end of every run: the test, if the data has a split, then the finished file (`save`). */
async function testAndSave(
  model: Module,
  testData: { dataset: ImageDataset; name: string } | null,
  transform: ImageTransform,
  out: string,
  save: (notes: NonNullable<ModelInfo['notes']>) => void,
): Promise<void> {
  if (testData === null) {
    save({});
    console.log(`trained → ${out} (no test split found)`);
    return;
  }
  const result = await evaluateOnPlan(model, testData.dataset, { transform });
  save({ testAccuracy: result.accuracy, testImages: result.examples });
  console.log(
    `test accuracy ${(result.accuracy * 100).toFixed(2)}% on ${result.examples} ${testData.name} images → ${out}`,
  );
}

/** The first `n` examples taking classes in turn, so that a small subset stays balanced. */
export function balancedIndices(
  dataset: { length: number; label(i: number): number; classes: readonly string[] },
  n: number,
): number[] {
  const perClass: number[][] = dataset.classes.map(() => []);
  for (let i = 0; i < dataset.length; i++) perClass[dataset.label(i)]!.push(i);
  const out: number[] = [];
  for (let k = 0; out.length < n; k++) {
    let added = false;
    for (const list of perClass) {
      if (k < list.length && out.length < n) {
        out.push(list[k]!);
        added = true;
      }
    }
    if (!added) break;
  }
  return out;
}
