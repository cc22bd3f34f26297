#!/usr/bin/env node
/**
 * The `shufflenet` command line. Errors are one line on stderr and a non-zero exit code; add
 * --verbose for a stack trace.
 */
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { ShuffleNetError } from '../errors.js';
import { printable } from './format.js';
import { flopsCommand } from './commands/flops.js';
import { importCommand } from './commands/import.js';
import { inferCommand } from './commands/infer.js';
import { infoCommand } from './commands/info.js';
import { trainCommand } from './commands/train.js';
import { evalCommand } from './commands/eval.js';
import { classifyCommand } from './commands/classify.js';
import { demoCommand } from './commands/demo.js';
import { exportCommand } from './commands/export.js';
import { quantizeCommand } from './commands/quantize.js';
import { benchCommand } from './commands/bench.js';
import { experimentCommand } from './commands/experiment.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(): Command {
  const program = new Command('shufflenet')
    .description('ShuffleNet (Zhang et al., CVPR 2018) in TypeScript: define, run and measure the network family')
    .version(version)
    .option('--verbose', 'print stack traces with errors', false)
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  program.addCommand(demoCommand());
  program.addCommand(flopsCommand());
  program.addCommand(inferCommand());
  program.addCommand(infoCommand());
  program.addCommand(trainCommand());
  program.addCommand(evalCommand());
  program.addCommand(classifyCommand());
  program.addCommand(exportCommand());
  program.addCommand(quantizeCommand());
  program.addCommand(importCommand());
  program.addCommand(benchCommand());
  program.addCommand(experimentCommand());
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const verbose = argv.includes('--verbose');
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode; // commander already printed its message
    const message = e instanceof Error ? e.message : String(e);
    const prefix = e instanceof ShuffleNetError ? 'error' : 'internal error';
    // Messages quote names from files: escape them (and cut a hostile one) before they reach the terminal.
    console.error(`shufflenet: ${prefix}: ${printable(message, 2000)}`);
    if (verbose && e instanceof Error && e.stack)
      console.error(
        e.stack
          .split('\n')
          .map((line) => printable(line, 2000))
          .join('\n'),
      );
    return e instanceof ShuffleNetError ? 1 : 2;
  }
}

main(process.argv).then((code) => {
  process.exitCode = code;
});
