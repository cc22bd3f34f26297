import { fieldParser, positiveInt, threadsOption } from '../args.js';
import { integerField } from '../../validate.js';
import { Command } from 'commander';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { preprocessImage } from '../../data/image.js';
import { ShuffleNetError } from '../../errors.js';
import { loadCliModel, openRunner } from '../models.js';
import { softmax } from '../../ops/index.js';
import { decodeImage, defaultPixelLimit } from '../../node/image.js';
import { readFileOrFail } from '../files.js';
import { bundledModelPath } from '../bundled.js';
import { printable, printableJson } from '../format.js';

const imageFile = /\.(jpe?g|png|webp|gif|tiff?|avif)$/i;

/** Files named on the command line, with folders expanded to the images inside them (sorted). */
export function expandImages(paths: readonly string[]): string[] {
  return paths.flatMap((p) => {
    let isDir: boolean;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      return [p]; // reading it reports "no such file"
    }
    return isDir
      ? readdirSync(p)
          .filter((f) => imageFile.test(f))
          .sort()
          .map((f) => join(p, f))
      : [p];
  });
}

interface ClassifyOptions {
  model?: string;
  top: number;
  json: boolean;
  maxPixels: number;
  threads: number | 'auto';
}

export function classifyCommand(): Command {
  return new Command('classify')
    .description('classify images (JPEG, PNG, WebP; files or folders) with a model file')
    .argument('<images...>', 'image files or folders of images')
    .option('--model <file>', 'model file (default: the bundled Fashion-MNIST model)')
    .option('--top <k>', 'how many classes to show', positiveInt, 3)
    .option('--json', 'print JSON: per image {file, top: [{label, probability}]}', false)
    .option(
      '--max-pixels <n>',
      `refuse images with more pixels than this (decompression bombs); at most ${defaultPixelLimit}`,
      fieldParser(integerField(1, defaultPixelLimit)),
      defaultPixelLimit,
    )
    .addOption(threadsOption())
    .action(async (images: string[], opts: ClassifyOptions) => {
      const modelPath = opts.model ?? bundledModelPath();
      const model = loadCliModel(modelPath);
      const loaded = model.loaded;
      const preprocessing = loaded.info?.preprocessing;
      if (!preprocessing)
        throw new ShuffleNetError(`${modelPath}: has no preprocessing preset, so images cannot be prepared for it`);
      const channels = preprocessing.channels === 'gray' ? 1 : 3;
      const files = expandImages(images);
      if (files.length === 0) throw new ShuffleNetError('classify: no images found in the given folders');
      const graph = loaded.graphFor([1, channels, preprocessing.crop, preprocessing.crop]);
      const session = await openRunner(model, graph, opts.threads);
      const results = [];
      try {
        for (const file of files) {
          const image = await decodeImage(readFileOrFail(file, 'image'), file, {
            pixelLimit: opts.maxPixels,
            resize: preprocessing.resize,
          });
          const probabilities = softmax(await session.run(preprocessImage(image, preprocessing, file))).data;
          const top = [...probabilities]
            .map((probability, index) => ({ label: loaded.info?.labels?.[index] ?? String(index), probability }))
            .sort((a, b) => b.probability - a.probability)
            .slice(0, opts.top);
          results.push({ file, top });
        }
      } finally {
        await session.dispose();
      }
      if (opts.json) {
        console.log(printableJson(results));
        return;
      }
      for (const r of results) {
        console.log(
          `${printable(r.file)}: ${r.top.map((t) => `${printable(t.label, 40)} ${(t.probability * 100).toFixed(1)}%`).join(', ')}`,
        );
      }
    });
}
