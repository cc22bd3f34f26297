import { Command, Option } from 'commander';
import { toFloat } from '../../data/batches.js';
import { subset, type ImageDataset } from '../../data/dataset.js';
import { ShuffleNetError } from '../../errors.js';
import { loadModelFile } from '../../io/modelfile.js';
import { formatDuration } from '../../node/experiment/experiment.js';
import { calibrationMethods, Calibrator, type CalibrationMethod } from '../../runtime/quant/calibrate.js';
import { calibrationFields, saveQuantizedModelFile, type QuantizationInfo } from '../../runtime/quant/file.js';
import { Random } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { evaluateInt8, evaluateOnPlan } from '../../train/evaluate.js';
import { integerField } from '../../validate.js';
import { fieldParser } from '../args.js';
import { loadData } from '../data.js';
import { checkOutputPath, readFileOrFail, writeFileAtomic } from '../files.js';
import { printable, progressLine } from '../format.js';
import { balancedIndices } from './train.js';

interface QuantizeFlags {
  model: string;
  data: string;
  calibration: number;
  method: CalibrationMethod;
  percentile?: number;
  weightBits: string;
  eval: number;
  out: string;
}

export function quantizeCommand(): Command {
  return new Command('quantize')
    .description('post-training static int8 quantization of a model file (docs/int8.md)')
    .requiredOption('--model <file>', 'float model file (ours, with its preprocessing)')
    .option('--data <source>', 'calibration images: fashion-mnist, mnist, or a folder with train/', 'fashion-mnist')
    .option(
      '--calibration <n>',
      'training images to calibrate on (class-balanced)',
      fieldParser(calibrationFields.images),
      500,
    )
    .addOption(
      new Option('--method <name>', 'how each activation range is chosen')
        .choices(calibrationMethods)
        .default('percentile'),
    )
    .option(
      '--percentile <p>',
      'upper percentile kept by --method percentile (default 99.99)',
      fieldParser(calibrationFields.percentile),
    )
    .addOption(
      new Option(
        '--weight-bits <n>',
        'weight range: 8 ([−127, 127]) or 7 ([−63, 63]: the relaxed-SIMD build multiplies them 16 per instruction)',
      )
        .choices(['7', '8'])
        .default('8'),
    )
    .option(
      '--eval <n>',
      'test images (class-balanced) on which to measure float and int8 accuracy, recorded in the file (0: none)',
      fieldParser(integerField(0, 10_000_000)),
      1000,
    )
    .requiredOption('--out <file>', 'where to write the int8 model file')
    .action(async (opts: QuantizeFlags) => {
      checkOutputPath(opts.out, '--out');
      if (opts.percentile !== undefined && opts.method !== 'percentile') {
        throw new ShuffleNetError(`quantize: --percentile applies to --method percentile, not ${opts.method}`);
      }
      const weightBits = opts.weightBits === '7' ? 7 : 8;
      const { model, info } = loadModelFile(readFileOrFail(opts.model, 'model'), opts.model);
      const preprocessing = info.preprocessing;
      if (preprocessing === undefined)
        throw new ShuffleNetError(
          `${printable(opts.model)}: no preprocessing in its metadata, so images cannot be prepared for it`,
        );
      const transform = toFloat(preprocessing.mean, preprocessing.std);
      const train = await loadData(opts.data, 'train', preprocessing.crop);
      if (train === null) throw new ShuffleNetError(`--data ${opts.data}: no training images`);
      checkImages(train.dataset, preprocessing.channels === 'gray' ? 1 : 3, opts.data);
      const shape = [1, ...train.dataset.imageShape];
      const graph = model.trace(shape);
      const indices = balancedIndices(train.dataset, opts.calibration);
      const calibrator = new Calibrator(graph, {
        method: opts.method,
        images: indices.length,
        ...(opts.percentile !== undefined ? { percentile: opts.percentile } : {}),
        weightBits: weightBits,
      });
      const started = performance.now();
      const progress = progressLine('calibrating on');
      const rng = new Random(0); // toFloat draws nothing
      indices.forEach((index, i) => {
        calibrator.observe(new Tensor(shape, transform(train.dataset.pixels(index), train.dataset.imageShape, rng)));
        progress?.(i + 1, indices.length);
      });
      const network = calibrator.finish();
      const calibrationSeconds = (performance.now() - started) / 1000;
      const calibration: QuantizationInfo['calibration'] = {
        method: opts.method,
        images: indices.length,
        data: opts.data,
        ...(opts.method === 'percentile' ? { percentile: opts.percentile ?? 99.99 } : {}),
        weightBits,
      };
      let accuracy: QuantizationInfo['accuracy'];
      if (opts.eval > 0) {
        const test = await loadData(opts.data, 'test', preprocessing.crop);
        if (test === null) throw new ShuffleNetError(`--data ${opts.data}: no test/ or val/ folder for --eval`);
        const images = subset(test.dataset, balancedIndices(test.dataset, opts.eval));
        const float = await evaluateOnPlan(model, images, { transform });
        const onProgress = progressLine('int8 accuracy on');
        const int8 = await evaluateInt8(network, images, { transform, ...(onProgress ? { onProgress } : {}) });
        accuracy = { float: float.accuracy, int8: int8.accuracy, data: opts.data, examples: images.length };
      }
      // The command that made this file, as typed (its paths are the user's own).
      const command = ['shufflenet', ...process.argv.slice(2)].join(' ');
      // The float file's notes say how it was made; its test accuracy is the float model's, and
      // metadata.quantization.accuracy holds both, so it is not carried over as this file's.
      const { testAccuracy: _accuracy, testImages: _images, ...inherited } = info.notes ?? {};
      const notes = { ...inherited, quantizedFrom: opts.model.split(/[\\/]/).pop()!, quantizeCommand: command };
      const bytes = saveQuantizedModelFile(
        network,
        { ...info, notes },
        { calibration, ...(accuracy ? { accuracy } : {}) },
      );
      writeFileAtomic(opts.out, bytes);
      const pct = (a: number): string => `${(a * 100).toFixed(2)}%`;
      console.log(
        `${printable(opts.model)} → ${printable(opts.out)}: int8, ${bytes.length.toLocaleString('en-US')} bytes; ` +
          `${weightBits}-bit weights, calibrated on ${indices.length} ${printable(opts.data)} images by ${opts.method} in ${formatDuration(calibrationSeconds)}` +
          (accuracy
            ? `\naccuracy on ${accuracy.examples} test images: float ${pct(accuracy.float!)}, int8 ${pct(accuracy.int8!)}`
            : ''),
      );
    });
}

function checkImages(dataset: ImageDataset, channels: number, data: string): void {
  if (dataset.imageShape[0] !== channels) {
    throw new ShuffleNetError(
      `--data ${data}: images have ${dataset.imageShape[0]} channel(s); the model takes ${channels}`,
    );
  }
}
