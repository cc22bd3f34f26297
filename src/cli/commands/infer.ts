import { batchSize } from '../args.js';
import { Command } from 'commander';
import { ShapeError } from '../../errors.js';
import { runGraph } from '../../graph/execute.js';
import { loadCliModel } from '../models.js';
import { runQuantizedBatch } from '../../runtime/quant/execute.js';
import { readSafetensors, writeSafetensors } from '../../io/safetensors.js';
import { formatShape, Tensor } from '../../tensor/tensor.js';
import { readFileOrFail, writeFileAtomic } from '../files.js';
import { printable } from '../format.js';

export function inferCommand(): Command {
  return new Command('infer')
    .description('run a batch through a model file: IN.safetensors["input"] [N, C, H, W] → OUT.safetensors["logits"]')
    .requiredOption('--model <file>', 'model file (our .safetensors, or a bare state dict with --arch)')
    .option('--arch <name>', 'network of a file that holds only weights')
    .requiredOption('--input <file>', 'safetensors file with a tensor "input" [N, C, H, W]')
    .requiredOption('--output <file>', 'where to write a safetensors file with "logits" [N, classes]')
    .option('--batch-size <n>', 'images per forward pass', batchSize, 16)
    .action((opts: { model: string; arch?: string; input: string; output: string; batchSize: number }) => {
      const { loaded: model, int8 } = loadCliModel(opts.model, opts.arch);
      const input = readSafetensors(readFileOrFail(opts.input, 'input'), opts.input).tensors.get('input');
      if (input === undefined) throw new ShapeError(`${opts.input}: has no tensor named "input"`);
      if (input.rank !== 4)
        throw new ShapeError(`${opts.input}: "input" must be [N, C, H, W] but has shape ${formatShape(input.shape)}`);
      const bad = input.data.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0)
        throw new ShapeError(`${opts.input}: "input" holds ${input.data[bad]} at index ${bad}; inputs must be finite`);
      const [n, c, h, w] = input.shape as [number, number, number, number];
      if (n === 0) throw new ShapeError(`${opts.input}: "input" holds no images (shape ${formatShape(input.shape)})`);
      const perImage = c * h * w;
      const chunks: Tensor[] = [];
      for (let start = 0; start < n; start += opts.batchSize) {
        const count = Math.min(opts.batchSize, n - start);
        const batch = new Tensor([count, c, h, w], input.data.subarray(start * perImage, (start + count) * perImage));
        const graph = model.graphFor(int8 ? [1, c, h, w] : batch.shape);
        chunks.push(int8 ? runQuantizedBatch(int8.network, batch) : runGraph(graph, batch));
        if (n > opts.batchSize && process.stderr.isTTY) process.stderr.write(`\r${start + count}/${n} images`);
      }
      if (n > opts.batchSize && process.stderr.isTTY) process.stderr.write('\n');
      const classes = chunks[0]?.shape[1] ?? 0;
      const logits = new Tensor([n, classes]);
      let offset = 0;
      for (const chunk of chunks) {
        logits.data.set(chunk.data, offset);
        offset += chunk.size;
      }
      writeFileAtomic(opts.output, writeSafetensors(new Map([['logits', logits]])));
      console.error(
        `${printable(model.description)}: ${n} image(s) ${c}×${h}×${w} → logits [${n}, ${classes}] in ${printable(opts.output)}`,
      );
    });
}
