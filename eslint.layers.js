// A local ESLint plugin with the rules that hold the architecture's layers (docs/architecture.md,
// issue 10): a module under src/ imports only from its own layer or from layers to its left, and
// the web page imports only the library's public browser entries. Paths are resolved, not matched
// as text, so '../runtime/plan.js' and '../../runtime/plan.js' are judged by where they land.
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const srcDir = join(root, 'src');
const webDir = join(root, 'web');

/**
 * The layers, left to right: a folder of src/ may import from its own entry or from any entry to its
 * left. `optim` (SGD, schedules, clipping over tensors) sits with nn/autograd, the parameters and
 * gradients it updates; the list does not name it. `data` (datasets, batching, image
 * preprocessing, over tensors only) sits below io rather than beside runtime: a model file records
 * its `Preprocessing`, so io reads data's types.
 */
export const layerOrder = [
  ['tensor'],
  ['kernels'],
  ['ops'],
  ['graph'],
  ['nn', 'autograd', 'optim'],
  ['models'],
  ['data'],
  ['io', 'analysis'],
  ['runtime'],
  ['train'],
  ['node'],
  ['cli'],
];

/**
 * Files directly in src/ that every layer may import (they import nothing from src/ but each other):
 * the typed errors, and the validation layer's field checker (docs/input-safety.md).
 */
const foundations = new Set(['errors.ts', 'validate.ts']);
/** The package's entry files: they sit above every layer, so no layer may import them. */
const entries = new Set(['index.ts', 'browser.ts', 'browser-worker.ts', 'browser-int8.ts']);
/** What web/ may import from the library: the public browser entries, as a path or a package name. */
const browserEntries = new Set(['browser.ts', 'browser-worker.ts', 'browser-int8.ts']);
const browserPackageNames = new Set(['shufflenet/browser', 'shufflenet/browser-worker', 'shufflenet/browser-int8']);

const orderText = layerOrder.map((group) => group.join('/')).join(' → ');
const foundationRank = -1;
const entryRank = layerOrder.length;

/** Where a path inside src/ stands: a rank (its layer's index) and a name for messages. */
function placeOf(pathInSrc) {
  const parts = pathInSrc.split(sep);
  if (parts.length === 1) {
    // Imports are written with .js; the sources are .ts.
    const file = parts[0].replace(/\.js$/, '.ts');
    if (foundations.has(file)) return { rank: foundationRank, name: `src/${file}` };
    if (entries.has(file)) return { rank: entryRank, name: `the entry src/${file}` };
    return null;
  }
  const rank = layerOrder.findIndex((group) => group.includes(parts[0]));
  return rank < 0 ? null : { rank, name: layerOrder[rank].join('/') };
}

function isInside(dir, path) {
  const rel = relative(dir, path);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep) && !/^[a-zA-Z]:/.test(rel);
}

/**
 * Calls `check(specifier, node)` for every module a file names: static imports, re-exports,
 * dynamic import(), TypeScript's `import('…')` types and `import x = require('…')`, and
 * `new URL('./x.js', import.meta.url)` for a script (how workers are spawned).
 */
function moduleVisitors(check) {
  const literal = (node) => (node && node.type === 'Literal' && typeof node.value === 'string' ? node : null);
  const fromSource = (node) => {
    const source = literal(node.source);
    if (source) check(source.value, source);
  };
  return {
    ImportDeclaration: fromSource,
    ExportNamedDeclaration: fromSource,
    ExportAllDeclaration: fromSource,
    ImportExpression: fromSource,
    TSImportType: fromSource,
    TSExternalModuleReference(node) {
      const source = literal(node.expression);
      if (source) check(source.value, source);
    },
    NewExpression(node) {
      if (node.callee.type !== 'Identifier' || node.callee.name !== 'URL' || node.arguments.length < 2) return;
      const [first, second] = node.arguments;
      const isMetaUrl =
        second.type === 'MemberExpression' &&
        second.object.type === 'MetaProperty' &&
        second.property.type === 'Identifier' &&
        second.property.name === 'url';
      const source = literal(first);
      if (isMetaUrl && source && /\.(m?[jt]s)$/.test(source.value)) check(source.value, source);
    },
  };
}

const layerRule = {
  meta: {
    type: 'problem',
    docs: { description: `A src/ module imports only from its own layer or layers to its left: ${orderText}.` },
    schema: [],
    messages: {
      upward:
        '{{from}} imports {{specifier}} from {{to}}, a layer above it. Layers, left to right: ' +
        `${orderText}; a module may import only from its own layer or those to its left (and src/errors.ts).`,
      unplaced: '{{file}} is in no layer: add its folder to layerOrder in eslint.layers.js ({{order}}).',
      packageSelf: '{{from}} imports the package by name ({{specifier}}): inside src/, import the module itself.',
    },
  },
  create(context) {
    const filename = context.filename;
    if (!isInside(srcDir, filename)) return {};
    const here = placeOf(relative(srcDir, filename));
    if (here === null) {
      return {
        Program(node) {
          context.report({
            node,
            messageId: 'unplaced',
            data: { file: relative(root, filename), order: orderText },
          });
        },
      };
    }
    return moduleVisitors((specifier, node) => {
      if (specifier === 'shufflenet' || specifier.startsWith('shufflenet/')) {
        context.report({ node, messageId: 'packageSelf', data: { from: here.name, specifier } });
        return;
      }
      if (!specifier.startsWith('.')) return; // a package or a Node built-in: the other rule's business
      const target = resolve(dirname(filename), specifier);
      if (!isInside(srcDir, target)) return;
      const there = placeOf(relative(srcDir, target));
      // An import of a file directly in src/ that is neither a foundation nor an entry: treat it as
      // an entry (above everything), so that a new top-level file must be placed deliberately.
      const to = there ?? { rank: entryRank, name: `src/${relative(srcDir, target)}` };
      if (to.rank > here.rank) {
        context.report({ node, messageId: 'upward', data: { from: here.name, specifier, to: to.name } });
      }
    });
  },
};

const browserEntryRule = {
  meta: {
    type: 'problem',
    docs: { description: 'web/ imports the library only through its public browser entry (shufflenet/browser).' },
    schema: [],
    messages: {
      internal:
        'web/ imports {{specifier}}: the page may use only the public browser entry (src/browser.ts, ' +
        'shufflenet/browser), the session worker entry (src/browser-worker.ts) and the int8 entry ' +
        '(src/browser-int8.ts, shufflenet/browser-int8).',
    },
  },
  create(context) {
    const filename = context.filename;
    if (!isInside(webDir, filename)) return {};
    return moduleVisitors((specifier, node) => {
      if (specifier === 'shufflenet' || specifier.startsWith('shufflenet/')) {
        if (!browserPackageNames.has(specifier)) context.report({ node, messageId: 'internal', data: { specifier } });
        return;
      }
      if (!specifier.startsWith('.')) return;
      const target = resolve(dirname(filename), specifier);
      if (isInside(webDir, target)) return;
      const rel = relative(srcDir, target);
      if (isInside(srcDir, target) && browserEntries.has(rel.replace(/\.js$/, '.ts'))) return;
      // Anything else outside web/ (src internals, test helpers, scripts) is not the public API.
      context.report({ node, messageId: 'internal', data: { specifier } });
    });
  },
};

export default {
  meta: { name: 'shufflenet-layers' },
  rules: { 'layer-order': layerRule, 'browser-entry': browserEntryRule },
};
