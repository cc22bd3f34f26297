// Compiles the AssemblyScript kernels (src/kernels/wasm/assembly) to WebAssembly and embeds the
// bytes, deflate-compressed (raw deflate, zlib level 9: 56% of the bytes) and base64-encoded, in a
// generated TypeScript module, so that the same core code loads them
// in Node and in browsers without file access. It also writes the TypeScript types of the
// modules' exports, read from the exported function declarations of the entry files (so module.ts
// restates no kernel signature). Run by `npm run build:wasm` (part of `npm run build`).
// The output is deterministic: running it twice gives the same files (test/wasm-build.test.ts).
// The WASM is compared by its bytes after inflating, not by the compressed text, so that another
// zlib (another Node) that compresses the same bytes differently does not count as a change.
//
//   node scripts/build-wasm.mjs          regenerate src/kernels/wasm/{kernels,exports}.generated.ts
//   node scripts/build-wasm.mjs --wat F  also write the text format to F, for reading/debugging
//   node scripts/build-wasm.mjs --check  only check that the committed files are what the sources give
import asc from 'assemblyscript/asc';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { dirname, join, relative } from 'node:path';
import * as prettier from 'prettier';
import ts from 'typescript';

const entry = 'src/kernels/wasm/assembly/index.ts';
const inferenceEntry = 'src/kernels/wasm/assembly/inference.ts';
const int8Entry = 'src/kernels/wasm/assembly/int8.ts';
const target = 'src/kernels/wasm/kernels.generated.ts';
/** The int8 kernels: their own module and file, so that only int8 plans load them (docs/int8.md). */
const int8Target = 'src/kernels/wasm/int8.generated.ts';
const exportsTarget = 'src/kernels/wasm/exports.generated.ts';
const flags = ['--enable', 'simd', '-O3', '--noAssert', '--runtime', 'stub', '--use', 'abort='];

/** JS types of AssemblyScript's value types at the boundary (bool crosses as an i32). */
const jsTypes = {
  i8: 'number',
  u8: 'number',
  i16: 'number',
  u16: 'number',
  i32: 'number',
  u32: 'number',
  f32: 'number',
  f64: 'number',
  usize: 'number',
  isize: 'number',
  bool: 'number',
  i64: 'bigint',
  u64: 'bigint',
  void: 'void',
};

/** Pages (64 KiB) a shared memory may grow to: 1 GiB, enough for AlexNet's weights and arena. */
const sharedMaximumPages = 16384;
const watIndex = process.argv.indexOf('--wat');
const version = JSON.parse(readFileSync('node_modules/assemblyscript/package.json', 'utf8')).version;

/** Compiles the kernels with extra asc flags; returns the binary and its text format. */
async function compile(extraFlags, source = entry) {
  const outputs = new Map();
  const { error, stderr } = await asc.main(
    [source, ...flags, ...extraFlags, '--outFile', 'kernels.wasm', '--textFile', 'kernels.wat'],
    {
      writeFile(name, contents) {
        outputs.set(name, contents);
      },
    },
  );
  if (error) {
    process.stderr.write(stderr.toString());
    process.stderr.write(`build-wasm: ${error.message}\n`);
    process.exit(1);
  }
  return { wasm: Buffer.from(outputs.get('kernels.wasm')), wat: outputs.get('kernels.wat') };
}

// Three builds of the same sources: WASM SIMD128, relaxed SIMD (fused multiply-add in `madd`), and
// WASM SIMD128 over an imported shared memory (env.memory, up to 1 GiB), which every thread of an
// intra-op threaded plan instantiates over the same WebAssembly.Memory.
/** A build over an imported shared memory (env.memory, up to 1 GiB) that every thread instantiates. */
const sharedMemoryFlags = [
  '--enable',
  'threads',
  '--importMemory',
  '--sharedMemory',
  '--initialMemory',
  '1',
  '--maximumMemory',
  String(sharedMaximumPages),
];
const variants = [
  { name: 'kernelsWasmBase64', what: 'WASM SIMD128', extra: [] },
  { name: 'kernelsRelaxedWasmBase64', what: 'WASM SIMD128 + relaxed SIMD', extra: ['--enable', 'relaxed-simd'] },
  {
    name: 'kernelsSharedWasmBase64',
    what: 'WASM SIMD128 over an imported shared memory (threads), inference kernels only',
    // The training kernels keep static scratch, which threads sharing one memory must not share.
    entry: inferenceEntry,
    extra: sharedMemoryFlags,
  },
];
const int8Variants = [
  { name: 'int8KernelsWasmBase64', what: 'int8 kernels, WASM SIMD128', entry: int8Entry, extra: [] },
  {
    name: 'int8KernelsRelaxedWasmBase64',
    what: 'int8 kernels, WASM SIMD128 + relaxed SIMD (the 8-bit dot product of qgemm7)',
    entry: int8Entry,
    extra: ['--enable', 'relaxed-simd'],
  },
  {
    name: 'int8KernelsSharedWasmBase64',
    what: 'int8 kernels, WASM SIMD128 over an imported shared memory (threads)',
    entry: int8Entry,
    extra: sharedMemoryFlags,
  },
];
const built = [];
for (const v of variants) built.push({ ...v, ...(await compile(v.extra, v.entry)) });
const builtInt8 = [];
for (const v of int8Variants) builtInt8.push({ ...v, ...(await compile(v.extra, v.entry)) });
if (watIndex >= 0) writeFileSync(process.argv[watIndex + 1], built[0].wat);

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
/** The builds embedded in the committed file, inflated, by name (none when it is absent or unreadable). */
function committedBuilds(text) {
  const found = new Map();
  for (const match of text.matchAll(/export const (\w+) =\n((?: {2}'[A-Za-z0-9+/=]*'(?: \+|;)\n)+)/g)) {
    const base64 = [...match[2].matchAll(/'([^']*)'/g)].map((m) => m[1]).join('');
    try {
      found.set(match[1], inflateRawSync(Buffer.from(base64, 'base64')));
    } catch {
      // not compressed (an older file): counts as changed
    }
  }
  return found;
}
/** The generated module of `builds` for `file`: unchanged text when every build is the same WASM. */
function generated(file, builds, sources) {
  const committed = committedBuilds(read(file));
  // Bytes as committed when they are the same WASM (whatever zlib compressed them), else fresh ones.
  const embedded = builds.map((b) => {
    const same = committed.get(b.name)?.equals(b.wasm) ?? false;
    return { ...b, same, compressed: deflateRawSync(b.wasm, { level: 9 }) };
  });
  if (embedded.every((b) => b.same) && committed.size === builds.length) return read(file);
  return `// Generated by scripts/build-wasm.mjs (npm run build:wasm) from ${sources} with
// AssemblyScript ${version} (${flags.join(' ')}). Do not edit.
// Each build is raw-deflate compressed, then base64-encoded; module.ts inflates it before compiling.
${embedded.map((b) => `// ${b.name}: ${b.wasm.length} bytes (${b.compressed.length} compressed), sha256 ${sha256(b.wasm)}.`).join('\n')}
${embedded
  .map(
    (b) => `
/** The kernels module for ${b.what}, raw-deflate compressed and base64-encoded. */
export const ${b.name} =
${chunk(b.compressed.toString('base64'), 96)
  .map((line, i, all) => `  '${line}'${i === all.length - 1 ? ';' : ' +'}`)
  .join('\n')}
`,
  )
  .join('')}`;
}
const source = generated(target, built, 'src/kernels/wasm/assembly');
const int8Source = generated(int8Target, builtInt8, int8Entry);
const exportsSource = await format(
  `// Generated by scripts/build-wasm.mjs (npm run build:wasm) from the exported functions of
// src/kernels/wasm/assembly. Do not edit. Every pointer is a byte address in the module's memory.
${exportsType('InferenceKernelExports', 'The exports of the shared-memory build: the inference kernels alone (assembly/inference.ts).', inferenceEntry, built[2].wasm)}
${exportsType('KernelExports', 'The exports of the SIMD128 and relaxed-SIMD builds (assembly/index.ts): the inference kernels and the training kernels.', entry, built[0].wasm, { name: 'InferenceKernelExports', file: inferenceEntry })}
${exportsType('Int8KernelExports', 'The exports of the int8 kernels module (assembly/int8.ts).', int8Entry, builtInt8[0].wasm)}`,
  exportsTarget,
);
const outputs = [
  [target, source],
  [int8Target, int8Source],
  [exportsTarget, exportsSource],
];
const stale = outputs.filter(([file, text]) => read(file) !== text).map(([file]) => file);
if (process.argv.includes('--check')) {
  if (stale.length > 0) {
    console.error(
      `build-wasm: ${stale.join(', ')}: not what ${entry} compiles to; run npm run build:wasm and commit it`,
    );
    process.exit(1);
  }
  console.log(
    `build-wasm: ${target} is up to date (${built.map((b) => `${b.wasm.length}`).join(' + ')} bytes of WASM), and ${exportsTarget}`,
  );
  process.exit(0);
}
for (const [file, text] of outputs) if (stale.includes(file)) writeFileSync(file, text);
console.log(
  `build-wasm: ${target}: ${built.map((b) => `${b.wasm.length}`).join(' + ')} bytes of WASM, ${int8Target}: ` +
    `${builtInt8.map((b) => `${b.wasm.length}`).join(' + ')}${stale.length === 0 ? ' (unchanged)' : ''}`,
);

function read(file) {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return ''; // first build
  }
}

async function format(text, file) {
  return prettier.format(text, { ...(await prettier.resolveConfig(file)), filepath: file });
}

/**
 * The exported functions of an entry file, in export order, following `export { … } from` to the
 * declaring file: { name, file, params: [{ name, type }], result }. A declaration's types are read
 * only when it is exported from the entry (helpers with v128 parameters are exported between files).
 */
function exportedFunctions(file) {
  return exportedDeclarations(file).map(({ name, signature }) => ({ name, ...signature() }));
}

/** [{ name, signature() }] of the functions a file exports, declared there or re-exported. */
function exportedDeclarations(file) {
  const sourceFile = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found = [];
  const exported = (node) => node.modifiers?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword);
  for (const statement of sourceFile.statements) {
    if (ts.isExportDeclaration(statement)) {
      if (!statement.moduleSpecifier || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) {
        fail(file, statement, 'only `export { names } from` is understood');
      }
      const from = join(dirname(file), `${statement.moduleSpecifier.text}.ts`);
      const declared = new Map(exportedDeclarations(from).map((d) => [d.name, d]));
      for (const element of statement.exportClause.elements) {
        const original = (element.propertyName ?? element.name).text;
        const d = declared.get(original);
        if (d === undefined) fail(file, element, `${from} exports no function ${original}`);
        found.push({ ...d, name: element.name.text });
      }
    } else if (ts.isFunctionDeclaration(statement) && exported(statement)) {
      const name = statement.name.text;
      const typeOf = (node, what) => {
        const text = node?.getText(sourceFile);
        const type = jsTypes[text];
        if (type === undefined)
          fail(file, node ?? statement, `${what} has type ${text ?? '(none)'}, not a WASM value type`);
        return type;
      };
      const signature = () => ({
        file,
        params: statement.parameters.map((p) => ({
          name: p.name.getText(sourceFile),
          type: typeOf(p.type, `${name}(${p.name.getText(sourceFile)})`),
        })),
        result: typeOf(statement.type, `${name}'s result`),
      });
      found.push({ name, signature });
    }
  }
  return found;
}

function fail(file, node, message) {
  const { line } = node.getSourceFile().getLineAndCharacterOfPosition(node.getStart());
  console.error(`build-wasm: ${file}:${line + 1}: ${message}`);
  process.exit(1);
}

/**
 * The TypeScript type of a build's exports and the list of its function names, checked against
 * the exports of the compiled binary, so the declarations read and what the module exports agree.
 */
function exportsType(name, doc, file, wasm, base) {
  const functions = exportedFunctions(file);
  // A build that exports all of a base's functions extends its type instead of restating them.
  const inherited = new Set(base ? exportedFunctions(base.file).map((f) => f.name) : []);
  if ([...inherited].some((n) => !functions.some((f) => f.name === n))) {
    console.error(`build-wasm: ${file} does not export every function of ${base.file}`);
    process.exit(1);
  }
  const binary = WebAssembly.Module.exports(new WebAssembly.Module(wasm));
  const binaryFunctions = binary.filter((e) => e.kind === 'function').map((e) => e.name);
  const declared = functions.map((f) => f.name);
  if (binaryFunctions.slice().sort().join() !== declared.slice().sort().join()) {
    console.error(
      `build-wasm: ${file} declares ${declared.join(', ')} but the module exports ${binaryFunctions.join(', ')}`,
    );
    process.exit(1);
  }
  const memory = binary.some((e) => e.kind === 'memory' && e.name === 'memory');
  const names = `${name.charAt(0).toLowerCase()}${name.slice(1)}Names`;
  return `
/** ${doc} */
export type ${name} = ${base ? `${base.name} & ` : ''}{
${memory ? '  readonly memory: WebAssembly.Memory;\n' : ''}${functions
    .filter((f) => !inherited.has(f.name))
    .map(
      (f) =>
        `  /** ${relative('src/kernels/wasm', f.file)} */\n  ${f.name}(${f.params.map((p) => `${p.name}: ${p.type}`).join(', ')}): ${f.result};`,
    )
    .join('\n')}
};

/** The functions of ${name}, to check an instance's exports against. */
export const ${names} = [${declared.map((n) => `'${n}'`).join(', ')}] as const;
`;
}

function chunk(text, width) {
  const lines = [];
  for (let i = 0; i < text.length; i += width) lines.push(text.slice(i, i + width));
  return lines;
}
