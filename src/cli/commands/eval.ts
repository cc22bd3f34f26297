import { batchSize, positiveInt, threadsOption } from '../args.js';
import { subset } from '../../data/dataset.js';
import { balancedIndices } from './train.js';
import { nodeSessionOptions } from '../../node/session.js';
import { Command } from 'commander';
import { toFloat } from '../../data/batches.js';
import { ShuffleNetError } from '../../errors.js';
import { loadCliModel } from '../models.js';
import { evaluateInt8, evaluateOnPlan } from '../../train/evaluate.js';
import { loadData } from '../data.js';
import { formatTable, printable, printableJson, progressLine } from '../format.js';

export function evalCommand(): Command {
  return new Command('eval')
    .description('accuracy and confusion matrix of a model file on a test set')
    .requiredOption('--model <file>', 'model file')
    .option('--data <source>', 'fashion-mnist, mnist, or a folder with test/ (or val/)', 'fashion-mnist')
    .option('--batch-size <n>', 'images per forward pass', batchSize, 64)
    .option('--max-test <n>', 'test images (class-balanced subset; default: the whole test split)', positiveInt)
    .addOption(threadsOption())
    .option('--json', 'print JSON {accuracy, examples, confusion, classes, threads}', false)
    .action(
      async (opts: {
        model: string;
        data: string;
        batchSize: number;
        maxTest?: number;
        threads: number | 'auto';
        json: boolean;
      }) => {
        const { loaded, int8 } = loadCliModel(opts.model);
        if (!loaded.module && !int8)
          throw new ShuffleNetError(
            `${opts.model}: eval needs one of our networks (an imported graph has no preprocessing)`,
          );
        const info = loaded.info ?? {};
        const source = await loadData(opts.data, 'test', info.preprocessing?.crop ?? 32);
        if (source === null) throw new ShuffleNetError(`--data ${opts.data}: no test/ or val/ folder`);
        const dataset =
          opts.maxTest === undefined || opts.maxTest >= source.dataset.length
            ? source.dataset
            : subset(source.dataset, balancedIndices(source.dataset, opts.maxTest), `${source.name}[:${opts.maxTest}]`);
        const preprocessing = info.preprocessing;
        if (preprocessing && (preprocessing.channels === 'gray') !== (dataset.imageShape[0] === 1)) {
          throw new ShuffleNetError(
            `${opts.model} expects ${preprocessing.channels} images but ${source.name} has ${dataset.imageShape[0]} channel(s)`,
          );
        }
        const [c, h, w] = dataset.imageShape;
        const outputs = loaded.graphFor([1, c, h, w]).shapes;
        const classes = [...outputs.values()].at(-1)!.at(-1)!;
        if (classes !== dataset.classes.length) {
          throw new ShuffleNetError(
            `${opts.model} predicts ${classes} classes but ${source.name} has ${dataset.classes.length}`,
          );
        }
        const progress = progressLine('evaluating');
        const evaluation = {
          batchSize: opts.batchSize,
          transform: toFloat(preprocessing?.mean, preprocessing?.std),
          ...(progress ? { onProgress: progress } : {}),
        };
        // The fused WASM plan (one compiled graph, any batch size) instead of the reference executor;
        // an int8 file on the int8 plan (one thread, docs/int8.md).
        const result = int8
          ? await evaluateInt8(int8.network, dataset, evaluation)
          : await evaluateOnPlan(loaded.module!, dataset, {
              ...evaluation,
              session: nodeSessionOptions({ threads: opts.threads }),
            });
        const threads = result.notes || `${opts.threads} thread${opts.threads === 1 ? '' : 's'}`;
        if (opts.json) {
          console.log(
            printableJson({
              accuracy: result.accuracy,
              examples: result.examples,
              classes: dataset.classes,
              confusion: result.confusion,
              seconds: result.seconds,
              threads,
            }),
          );
          return;
        }
        console.log(
          `${printable(opts.model)} on ${printable(source.name)} (${result.examples} images): accuracy ${(result.accuracy * 100).toFixed(2)}%\n` +
            `(${threads})\n`,
        );
        const labels = info.labels ?? dataset.classes;
        console.log('confusion matrix (rows: true class, columns: predicted)\n');
        const rows = result.confusion.map((row, i) => ({ name: printable(labels[i] ?? String(i), 40), row }));
        console.log(
          formatTable(rows, [
            { header: 'true \\ predicted', value: (r) => r.name },
            ...labels.map((_, j) => ({
              header: String(j),
              value: (r: (typeof rows)[number]) => String(r.row[j] ?? 0),
              align: 'right' as const,
            })),
          ]),
        );
      },
    );
}
