import { ShuffleNetError } from '../../errors.js';

/** A benchmark that cannot run as asked: a wrong output, a missing peer that was required, a bad option. */
export class BenchmarkError extends ShuffleNetError {
  override name = 'BenchmarkError';
}
