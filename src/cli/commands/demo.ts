import { positiveInt, threadsOption } from '../args.js';
import { Command } from 'commander';
import { complexityTable } from '../../analysis/table.js';
import { toFloat } from '../../data/batches.js';
import { ShuffleNetError } from '../../errors.js';
import { loadCliModel, openRunner } from '../models.js';
import { loadFashionMnist } from '../../node/data/mnist.js';
import { softmax } from '../../ops/index.js';
import { Random } from '../../tensor/random.js';
import { Tensor } from '../../tensor/tensor.js';
import { evaluatePredictions } from '../../train/evaluate.js';
import { bundledModelPath } from '../bundled.js';
import { formatTable, printable } from '../format.js';

/** A 28×28 gray image as text: two pixel rows per line with ANSI grays on a terminal, a ramp otherwise. */
export function renderImage(pixels: Uint8Array, width: number, height: number, color: boolean): string[] {
  const lines: string[] = [];
  if (color) {
    const gray = (v: number): number => 232 + Math.round((v / 255) * 23);
    for (let y = 0; y < height; y += 2) {
      let line = '';
      for (let x = 0; x < width; x++) {
        const top = pixels[y * width + x]!;
        const bottom = y + 1 < height ? pixels[(y + 1) * width + x]! : 0;
        line += `\x1b[38;5;${gray(top)}m\x1b[48;5;${gray(bottom)}m▀`;
      }
      lines.push(`${line}\x1b[0m`);
    }
    return lines;
  }
  const ramp = ' .:-=+*#%@';
  for (let y = 0; y < height; y += 2) {
    let line = '';
    for (let x = 0; x < width; x++) {
      const v = (pixels[y * width + x]! + (y + 1 < height ? pixels[(y + 1) * width + x]! : 0)) / 2;
      line += ramp[Math.min(ramp.length - 1, Math.floor((v / 256) * ramp.length))];
    }
    lines.push(line);
  }
  return lines;
}

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'the bundled Fashion-MNIST ShuffleNet on held-out images: predictions, accuracy, latency, and the complexity table',
    )
    .option('--model <file>', 'model file (default: the bundled one)')
    .option('--images <n>', 'test images to show', positiveInt, 4)
    .option('--seed <n>', 'which test images to show', positiveInt, 1)
    .addOption(threadsOption())
    .action(async (opts: { model?: string; images: number; seed: number; threads: number | 'auto' }) => {
      const path = opts.model ?? bundledModelPath();
      const model = loadCliModel(path);
      const loaded = model.loaded;
      const p = loaded.info?.preprocessing;
      if ((!loaded.module && !model.int8) || !p || p.channels !== 'gray' || p.crop !== 28) {
        throw new ShuffleNetError(`${path}: the demo needs a 28×28 gray Fashion-MNIST model file`);
      }
      const labels = (loaded.info?.labels ?? []).map((l) => printable(l, 12));
      const { dataset } = loadFashionMnist('test');
      if (opts.images > dataset.length) {
        throw new ShuffleNetError(
          `--images ${opts.images}: the Fashion-MNIST test split has ${dataset.length.toLocaleString('en-US')} images`,
        );
      }
      const session = await openRunner(model, loaded.graphFor([1, 1, 28, 28]), opts.threads);
      try {
        const transform = toFloat(p.mean, p.std);
        const color = process.stdout.isTTY === true && !process.env['NO_COLOR'];
        const rng = new Random(opts.seed);

        console.log(`shufflenet demo: ${printable(loaded.description)}`);
        if (loaded.info?.notes?.['command'])
          console.log(`trained with: ${printable(String(loaded.info.notes['command']))}`);
        console.log(`\n${opts.images} held-out Fashion-MNIST test images:\n`);
        for (let k = 0; k < opts.images; k++) {
          const i = rng.int(dataset.length);
          const input = new Tensor([1, 1, 28, 28], transform(dataset.pixels(i), dataset.imageShape, rng));
          const probabilities = softmax(await session.run(input)).data;
          const top = [...probabilities.keys()].sort((a, b) => probabilities[b]! - probabilities[a]!).slice(0, 3);
          const truth = labels[dataset.label(i)] ?? String(dataset.label(i));
          const verdict = top[0] === dataset.label(i) ? 'right' : 'wrong';
          const text = [
            `test image #${i}, true class: ${truth}`,
            '',
            ...top.map(
              (c, r) =>
                `${r === 0 ? '→' : ' '} ${(labels[c] ?? String(c)).padEnd(12)} ${(probabilities[c]! * 100).toFixed(1).padStart(5)}%`,
            ),
            '',
            `prediction: ${verdict}`,
          ];
          const picture = renderImage(dataset.pixels(i), 28, 28, color);
          picture.forEach((line, r) => console.log(`  ${line}   ${text[r] ?? ''}`));
          console.log('');
        }

        const runs = 201;
        const latencies: number[] = [];
        const sample = new Tensor([1, 1, 28, 28], transform(dataset.pixels(0), dataset.imageShape, rng));
        for (let r = 0; r < runs; r++) {
          const start = performance.now();
          await session.run(sample);
          latencies.push(performance.now() - start);
        }
        latencies.sort((a, b) => a - b);
        const result = await evaluatePredictions((x) => session.run(x), dataset, { transform });
        const engine = model.int8 ? '' : 'WASM SIMD plan, ';
        console.log(
          `accuracy on all ${result.examples} test images: ${(result.accuracy * 100).toFixed(2)}% ` +
            `(${result.seconds.toFixed(1)} s); latency per image: median ${latencies[(runs - 1) / 2]!.toFixed(3)} ms over ${runs} runs, ` +
            `batch 1, ${engine}${session.notes || `${session.threads} thread(s)`}\n`,
        );
      } finally {
        await session.dispose();
      }

      console.log(
        "The ShuffleNet family at 224×224 (multiply-adds, the paper's MFLOPs), beside the paper (all: shufflenet flops):\n",
      );
      const rows = complexityTable(224).filter((r) => !/_(noshuffle|se|shallow)$/.test(r.name));
      console.log(
        formatTable(rows, [
          { header: 'network', value: (r) => r.name },
          { header: 'MFLOPs', value: (r) => r.mflops!.toFixed(1), align: 'right' },
          { header: 'params (M)', value: (r) => (r.params! / 1e6).toFixed(2), align: 'right' },
          {
            header: 'paper',
            value: (r) => (r.paper ? `${r.paper.mflops}${r.paper.exact ? '' : ' (class)'}` : ''),
            align: 'right',
          },
        ]),
      );
    });
}
