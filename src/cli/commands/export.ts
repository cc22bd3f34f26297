import { fieldParser } from '../args.js';
import { Command, InvalidArgumentError } from 'commander';
import { networkFields } from '../../models/config-fields.js';
import { ShuffleNetError } from '../../errors.js';
import type { Graph } from '../../graph/graph.js';
import type { LoadedModel } from '../../io/load.js';
import { exportOnnx } from '../../io/onnx/export.js';
import { onnxArchitectureKey } from '../../io/onnx/loader.js';
import { architectureOf, createModel, type Architecture, type ModelOptions } from '../../models/registry.js';
import { writeFileAtomic } from '../files.js';
import { printable } from '../format.js';
import { parseSize } from './flops.js';
import { loadCliModel } from '../models.js';
import { exportQdq } from '../../runtime/quant/qdq.js';

function opsetNumber(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 13 || n > 21)
    throw new InvalidArgumentError(`opset must be 13 to 21, got "${value}"`);
  return n;
}

interface ExportFlags {
  model?: string;
  arch?: string;
  out: string;
  size?: number;
  numClasses?: number;
  inputChannels?: number;
  smallInput: boolean;
  seed?: number;
  opset: number;
}

export function exportCommand(): Command {
  return new Command('export')
    .description('write a model as ONNX (opset ≥ 13, dynamic batch) for onnxruntime and other engines')
    .option('--model <file>', 'model file to export (our .safetensors, or .onnx)')
    .option(
      '--arch <name>',
      'registered network to export with fresh random weights (or the network of a bare state dict)',
    )
    .requiredOption('--out <file>', 'where to write the .onnx file')
    .option('--size <n>', 'square input size of the exported graph (default 224, 32 with --small-input)', parseSize)
    .option(
      '--num-classes <n>',
      'classifier outputs, with --arch (default 1000)',
      fieldParser(networkFields.numClasses!),
    )
    .option(
      '--input-channels <n>',
      'image channels, with --arch (default 3)',
      fieldParser(networkFields.inputChannels!),
    )
    .option('--small-input', 'stem for 28×28/32×32 inputs, with --arch (stride-1 Conv1, no max pool)', false)
    .option('--seed <n>', 'seed of the random weights, with --arch (default 0)', fieldParser(networkFields.seed!))
    .option('--opset <n>', 'ONNX opset', opsetNumber, 13)
    .action((opts: ExportFlags) => {
      const archOnly = archOnlyFlags(opts);
      if (opts.model !== undefined && archOnly.length > 0) {
        throw new ShuffleNetError(`export: ${archOnly.join(', ')} only apply with --arch, not --model`);
      }
      const file = opts.model !== undefined ? loadCliModel(opts.model, opts.arch) : undefined;
      if (file !== undefined) {
        const { int8, loaded } = file;
        if (int8) {
          if (opts.size !== undefined)
            throw new ShuffleNetError(`export: an int8 model runs at the size it was calibrated at; drop --size`);
          // ONNX QDQ: QuantizeLinear/DequantizeLinear around the float ops (docs/int8.md).
          const bytes = exportQdq(int8.network, { opset: opts.opset, docString: loaded.description });
          writeFileAtomic(opts.out, bytes);
          console.error(
            `${printable(loaded.description)} → ${printable(opts.out)}: ONNX QDQ, opset ${opts.opset}, ${bytes.length} bytes`,
          );
          return;
        }
      }
      const { graph, description, architecture } = exportedGraph(opts, file?.loaded);
      // One of our networks carries its architecture, so that the file loads back as that network.
      const metadata: Record<string, string> = architecture
        ? { [onnxArchitectureKey]: JSON.stringify(architecture) }
        : {};
      const bytes = exportOnnx(graph, { opset: opts.opset, docString: description, metadata });
      writeFileAtomic(opts.out, bytes);
      const [, c, h, w] = graph.input.shape;
      const outShape = graph.shapes.get(graph.output)!;
      console.error(
        `${printable(description)} → ${printable(opts.out)}: opset ${opts.opset}, input [N, ${c}, ${h}, ${w}] → output ` +
          `[N, ${outShape.slice(1).join(', ')}], ${graph.nodes.length} ops, ${bytes.length} bytes`,
      );
    });
}

/** The flags that only describe a network built from --arch. */
function archOnlyFlags(opts: ExportFlags): string[] {
  const flags: [string, unknown][] = [
    ['--num-classes', opts.numClasses],
    ['--input-channels', opts.inputChannels],
    ['--seed', opts.seed],
    ['--small-input', opts.smallInput || undefined],
  ];
  return flags.filter(([, v]) => v !== undefined).map(([f]) => f);
}

function exportedGraph(
  opts: ExportFlags,
  loaded?: LoadedModel,
): { graph: Graph; description: string; architecture?: Architecture } {
  if (loaded !== undefined) {
    const model = loaded;
    const config = (model.info?.architecture?.config ?? {}) as Partial<ModelOptions>;
    const declared = model.inputShape; // an imported graph's own input
    const channels = declared?.[1] ?? config.inputChannels ?? 3;
    const [h, w] = opts.size
      ? [opts.size, opts.size]
      : declared
        ? [declared[2]!, declared[3]!]
        : Array(2).fill(config.inputSize ?? model.info?.preprocessing?.crop ?? (config.smallInput ? 32 : 224));
    const architecture = model.module !== undefined ? model.info?.architecture : undefined;
    return {
      graph: model.graphFor([1, channels, h, w]),
      description: model.description,
      ...(architecture ? { architecture } : {}),
    };
  }
  if (opts.arch === undefined) throw new ShuffleNetError('export: give --model FILE or --arch NAME');
  const size = opts.size ?? (opts.smallInput ? 32 : 224);
  const options: ModelOptions = {
    ...(opts.numClasses !== undefined ? { numClasses: opts.numClasses } : {}),
    ...(opts.inputChannels !== undefined ? { inputChannels: opts.inputChannels } : {}),
    ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
    smallInput: opts.smallInput,
    inputSize: size,
  };
  const model = createModel(opts.arch, options);
  return {
    graph: model.trace([1, options.inputChannels ?? 3, size, size]),
    description: `${opts.arch} (random weights, seed ${opts.seed ?? 0})`,
    architecture: architectureOf(opts.arch, options),
  };
}
