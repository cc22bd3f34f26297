import { Command, InvalidArgumentError } from 'commander';
import { complexityTable, layerBreakdown, paperComparison, type ComplexityRow } from '../../analysis/table.js';
import { fixed, formatTable, signedPercent } from '../format.js';

export function parseSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 8192) {
    throw new InvalidArgumentError(`input size must be an integer from 1 to 8192, got "${value}"`);
  }
  return n;
}

function jsonRow(r: ComplexityRow): Record<string, unknown> {
  return {
    name: r.name,
    mflops: r.mflops,
    params: r.params,
    input_size: r.inputSize,
    paper_mflops: r.paper?.mflops ?? null,
    paper_source: r.paper?.source ?? null,
    deviation: r.deviation,
    ...(r.error ? { error: r.error } : {}),
  };
}

export function flopsCommand(): Command {
  return new Command('flops')
    .description(
      "complexity table: multiply-adds (the paper's MFLOPs) and parameters of every network, beside the paper",
    )
    .option('--arch <name>', 'per-layer breakdown of one network')
    .option('--size <n>', 'square input size', parseSize, 224)
    .option('--json', 'print JSON: an array of {name, mflops, params, ...}', false)
    .action((opts: { arch?: string; size: number; json: boolean }) => {
      if (opts.arch !== undefined) {
        const { row, layers } = layerBreakdown(opts.arch, opts.size);
        if (opts.json) {
          const out = {
            ...jsonRow(row),
            layers: layers.map((l) => ({
              name: l.name,
              op: l.op,
              output_shape: l.outputShape,
              macs: l.macs,
              params: l.params,
            })),
          };
          console.log(JSON.stringify([out], null, 1));
          return;
        }
        console.log(`${row.name}: ${row.description}, input ${opts.size}×${opts.size}\n`);
        console.log(
          formatTable(layers, [
            { header: 'layer', value: (l) => l.name || '(root)' },
            { header: 'op', value: (l) => l.op },
            { header: 'output', value: (l) => `[${l.outputShape.join(', ')}]` },
            { header: 'MFLOPs', value: (l) => (l.macs ? (l.macs / 1e6).toFixed(3) : ''), align: 'right' },
            { header: 'params', value: (l) => (l.params ? String(l.params) : ''), align: 'right' },
          ]),
        );
        console.log(
          `\ntotal: ${fixed(2)(row.mflops)} MFLOPs, ${(row.params ?? 0).toLocaleString('en-US')} parameters` +
            (row.paper
              ? `; the paper: ${row.paper.mflops} (${row.paper.source}), ${signedPercent(row.deviation)}`
              : ''),
        );
        return;
      }
      const rows = complexityTable(opts.size);
      if (opts.json) {
        console.log(JSON.stringify(rows.map(jsonRow), null, 1));
        return;
      }
      console.log(
        `Complexity at ${opts.size}×${opts.size}: multiply-adds of conv and FC layers (the paper's "FLOPs"), trainable parameters.\n`,
      );
      console.log(
        formatTable(rows, [
          { header: 'network', value: (r) => r.name },
          { header: 'MFLOPs', value: (r) => (r.mflops === null ? 'n/a' : r.mflops.toFixed(2)), align: 'right' },
          {
            header: 'params (M)',
            value: (r) => (r.params === null ? 'n/a' : (r.params / 1e6).toFixed(3)),
            align: 'right',
          },
          ...(opts.size === 224
            ? [
                {
                  header: 'paper',
                  value: (r: ComplexityRow) => (r.paper ? String(r.paper.mflops) : ''),
                  align: 'right' as const,
                },
                {
                  header: 'source',
                  value: (r: ComplexityRow) => (r.paper ? `${r.paper.source}${r.paper.exact ? '' : ' (class)'}` : ''),
                },
                {
                  header: 'deviation',
                  value: (r: ComplexityRow) => (r.paper ? signedPercent(r.deviation) : ''),
                  align: 'right' as const,
                },
              ]
            : []),
        ]),
      );
      const failed = rows.filter((r) => r.error);
      for (const r of failed) console.log(`n/a ${r.name}: ${r.error}`);
      if (opts.size === 224) {
        console.log('\nEvery complexity the paper prints (Tables 1, 2, 5, 6):\n');
        console.log(
          formatTable(paperComparison(), [
            { header: 'source', value: (c) => c.source },
            { header: 'network', value: (c) => c.name },
            { header: 'printed', value: (c) => `${c.paper}${c.exact ? '' : ' (class)'}`, align: 'right' },
            { header: 'ours', value: (c) => c.ours.toFixed(3) + (c.includesClassifier ? '' : '*'), align: 'right' },
            { header: 'deviation', value: (c) => signedPercent(c.deviation), align: 'right' },
            { header: 'rounds to printed', value: (c) => (c.exact ? (c.roundsToPaper ? 'yes' : 'no') : '(class)') },
          ]),
        );
        console.log(
          '\n(class): a figure printed for a whole row or column (e.g. Table 2\'s "0.5×, 38 MFLOPs" for every g),',
        );
        console.log('  not for this exact network; the paper\'s own 1× networks span 133–143 under its "140".');
        console.log(
          "*: convolutional layers only; Table 1's complexity row leaves out the FC layer (docs/complexity.md).",
        );
        console.log('Width rules for scales other than 1×: docs/architecture.md.');
      }
    });
}
