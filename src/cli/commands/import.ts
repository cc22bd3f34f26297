import { Command } from 'commander';
import { complexity } from '../../analysis/complexity.js';
import { saveModelFile } from '../../io/modelfile.js';
import { importTorchCheckpoint } from '../../io/torch/index.js';
import { readFileOrFail, writeFileAtomic } from '../files.js';
import { printable } from '../format.js';

export function importCommand(): Command {
  return new Command('import')
    .description(
      "convert a PyTorch checkpoint (official megvii ShuffleNetV1, mmpretrain, torchvision's ShuffleNet V2, or our layout) into a model file",
    )
    .argument('<file>', 'checkpoint: .pth, .pth.tar or .pt, zip or legacy format; nothing in it is executed')
    .requiredOption('--out <file>', 'model file to write (.safetensors, with architecture and preprocessing)')
    .option(
      '--arch <name>',
      'network of a state dict in our own V1 layout (inferred for official, mmpretrain and torchvision files)',
    )
    .action((file: string, opts: { out: string; arch?: string }) => {
      const bytes = readFileOrFail(file, 'checkpoint');
      const imported = importTorchCheckpoint(bytes, file, opts.arch);
      imported.info.notes = { ...imported.info.notes, command: `shufflenet import ${file}` };
      writeFileAtomic(opts.out, saveModelFile(imported.model, imported.info));
      const { family, config } = imported.info.architecture as {
        family: string;
        config: { groups?: number; widths?: { conv1: number; stages: number[]; conv5?: number } };
      };
      const { macs, params } = complexity(imported.model.trace([1, 3, 224, 224]));
      const w = config.widths;
      const widths = w
        ? `, widths ${[w.conv1, ...w.stages, ...(w.conv5 === undefined ? [] : [w.conv5])].join('/')}`
        : '';
      const groups = config.groups === undefined ? '' : `, g = ${config.groups}`;
      console.error(
        `${printable(file)}: ${imported.format} format, ${imported.layout} layout, ${family}${groups}${widths}, ` +
          `${(macs / 1e6).toFixed(1)} MFLOPs, ${params} parameters, shuffle ${imported.shuffle} → ${printable(opts.out)}`,
      );
    });
}
