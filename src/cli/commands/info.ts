import { Command } from 'commander';
import { complexity } from '../../analysis/complexity.js';
import type { LoadedModel } from '../../io/load.js';
import { loadCliModel } from '../models.js';
import { printable, printableJson } from '../format.js';
import { parseSize } from './flops.js';
import type { QuantizationInfo } from '../../runtime/quant/file.js';

export function infoCommand(): Command {
  return new Command('info')
    .description('what a model file holds: architecture, preprocessing, labels, parameters and complexity')
    .argument('<file>', 'model file')
    .option('--arch <name>', 'network of a file that holds only weights')
    .option(
      '--size <n>',
      'input size for the complexity (default: the preprocessing crop, else 28 for small-input models, else 224)',
      parseSize,
    )
    .option('--json', 'print JSON', false)
    .action((file: string, opts: { arch?: string; size?: number; json: boolean }) => {
      const { loaded: model, int8 } = loadCliModel(file, opts.arch);
      const info = model.info ?? {};
      const summary = {
        ...infoSummary(file, model, opts.size ?? int8?.network.graph.input.shape[2]),
        ...(int8
          ? { quantization: int8.quantization ?? { activations: Object.fromEntries(int8.network.activations) } }
          : {}),
      };
      const [, channels, size] = summary.input_shape;
      if (opts.json) {
        console.log(printableJson(summary));
        return;
      }
      // Everything below but the numbers comes from the file: printable() escapes and cuts it.
      console.log(`${printable(file)}: ${printable(model.description)}`);
      if (info.architecture)
        console.log(
          `  architecture  ${info.architecture.family} ${printable(JSON.stringify(info.architecture.config))}`,
        );
      console.log(`  input         [1, ${channels}, ${size}, ${size}] → ${summary.classes} classes`);
      console.log(`  parameters    ${summary.params.toLocaleString('en-US')}`);
      console.log(`  complexity    ${summary.mflops.toFixed(2)} MFLOPs at ${size}×${size}`);
      if (info.preprocessing) console.log(`  preprocessing ${JSON.stringify(info.preprocessing)}`);
      if (info.labels) {
        const shown = info.labels.slice(0, maxLabelsShown).map((l) => printable(l, 40));
        const more = info.labels.length - shown.length;
        console.log(`  labels        ${shown.join(', ')}${more > 0 ? `, … and ${more} more (--json lists all)` : ''}`);
      }
      for (const [k, v] of Object.entries(info.notes ?? {}))
        console.log(`  ${printable(k, 40).padEnd(13)} ${printable(String(v))}`);
      if (int8?.quantization) printQuantization(int8.quantization);
      else if (int8)
        console.log(
          `  int8          QDQ graph: ${int8.network.activations.size} quantized values, ${int8.network.weights.size} int8 weight tensors`,
        );
    });
}

/** An int8 file's recipe, accuracy and every calibrated scale (names come from the file: escaped). */
function printQuantization(q: QuantizationInfo): void {
  const c = q.calibration;
  const pct = (a: number | undefined): string => (a === undefined ? '?' : `${(a * 100).toFixed(2)}%`);
  console.log(`  int8          ${q.scheme}`);
  console.log(
    `  calibration   ${c.method}${c.percentile !== undefined ? ` (percentile ${c.percentile})` : ''} on ${c.images} images` +
      `${c.data !== undefined ? ` of ${printable(c.data)}` : ''}; ${c.weightBits ?? 8}-bit weights`,
  );
  if (q.accuracy) {
    const on = q.accuracy.examples !== undefined ? ` on ${q.accuracy.examples} test images` : '';
    console.log(
      `  accuracy      float ${pct(q.accuracy.float)}, int8 ${pct(q.accuracy.int8)}${on}${q.accuracy.data !== undefined ? ` of ${printable(q.accuracy.data)}` : ''}`,
    );
  }
  const entries = Object.entries(q.activations);
  console.log(`  scales        ${entries.length} calibrated values (scale, zero point):`);
  for (const [value, p] of entries)
    console.log(
      `    ${printable(value, 60).padEnd(28)} ${p.scale.toPrecision(6).padStart(12)} ${String(p.zeroPoint).padStart(4)}`,
    );
}

/**
 * What `info` says of a loaded model, before printing: its input shape (the preprocessing crop, or
 * `size`), classes, parameters and complexity. The fuzz suite runs it on every accepted file.
 */
export function infoSummary(file: string, model: LoadedModel, size?: number) {
  const info = model.info ?? {};
  const config = (info.architecture?.config ?? {}) as Record<string, unknown>;
  // An imported graph declares its input; one of our networks has it in its config.
  const declared = model.inputShape;
  const channels = declared?.[1] ?? (typeof config['inputChannels'] === 'number' ? config['inputChannels'] : 3);
  const side = size ?? info.preprocessing?.crop ?? declared?.[2] ?? (config['smallInput'] === true ? 28 : 224);
  const graph = model.graphFor([1, channels, side, side]);
  const { macs, params } = complexity(graph);
  const outputs = graph.shapes.get(graph.output)!;
  return {
    file,
    description: model.description,
    arch: info.arch ?? null,
    architecture: info.architecture ?? null,
    input_shape: [1, channels, side, side] as const,
    classes: outputs[outputs.length - 1],
    params,
    mflops: macs / 1e6,
    preprocessing: info.preprocessing ?? null,
    labels: info.labels ?? null,
    notes: info.notes ?? null,
  };
}

/** Labels printed by `info` (ImageNet's 1,000 would fill the screen). */
const maxLabelsShown = 20;
