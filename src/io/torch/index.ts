/** PyTorch checkpoints: the safe unpickler, both file formats, and the ShuffleNet layout mapping. */
import { escapeControls, FormatError, ShuffleNetError } from '../../errors.js';
import type { LoadedModel, ModelLoader } from '../loaded.js';
import { readTorchCheckpoint } from './checkpoint.js';
import { importShuffleNet, type ImportedModel } from './shufflenet.js';

export { readTorchCheckpoint, stateDictWrappers, type TorchCheckpoint, type TorchTensor } from './checkpoint.js';
export { unpickle, type PickleValue } from './pickle.js';
export { readZip } from './zip.js';
export { officialShuffleSource } from '../../models/shufflenet-checkpoints.js';
export {
  importShuffleNet,
  relabelPlan,
  type UnitPlan,
  type CheckpointLayout,
  type ImportedModel,
} from './shufflenet.js';

/** Reads a `.pth` / `.pth.tar` / `.pt` file and rebuilds it as one of our networks. */
export function importTorchCheckpoint(
  bytes: Uint8Array,
  fileName: string,
  arch?: string,
): ImportedModel & { format: 'zip' | 'legacy' } {
  try {
    const checkpoint = readTorchCheckpoint(bytes, fileName);
    const imported = importShuffleNet(checkpoint.stateDict, fileName, arch);
    imported.info.notes = { ...imported.info.notes, format: checkpoint.format };
    return { ...imported, format: checkpoint.format };
  } catch (e) {
    // Messages quote state dict keys, which come from the file and may hold anything (a corrupt
    // key: "num_batches_tr\ncked"): control characters become \u escapes, so each stays one line.
    if (e instanceof ShuffleNetError && /\p{Cc}/u.test(e.message)) throw new FormatError(escapeControls(e.message));
    throw e;
  }
}

export const torchCheckpointExtensions = ['.pth', '.pth.tar', '.pt'] as const;

/** The `modelLoaders` entry for PyTorch checkpoints. */
export const torchLoader: ModelLoader = {
  name: 'pytorch (.pth, .pth.tar, .pt)',
  matches: (fileName) => torchCheckpointExtensions.some((ext) => fileName.endsWith(ext)),
  load(bytes, fileName, arch): LoadedModel {
    const { model, info, layout } = importTorchCheckpoint(bytes, fileName, arch);
    return {
      graphFor: (shape) => model.trace(shape),
      module: model,
      info,
      description: `${fileName} (PyTorch, ${layout} layout${info.arch ? `, ${info.arch}` : ''})`,
    };
  },
};
