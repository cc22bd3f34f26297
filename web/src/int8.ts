/**
 * The int8 forms of the page's networks (docs/int8.md). The worker imports this module only when
 * the page first switches to int8, so Vite emits it with 'shufflenet/browser-int8' (the int8
 * kernels, the int8 file reader, calibration) as a chunk of its own: a page that stays in float32
 * never downloads them.
 *
 * - A model file that the manifest pairs with an int8 file: that file, which must be the same
 *   network (architecture, preprocessing, labels, input shape) or it is refused.
 * - Any other network: calibrated here (minmax) on a few seeded random images. For the random
 *   networks of the picker that is all there is to calibrate on; the page says so.
 */
import { FormatError, preprocessImage, Random, type RawImage } from 'shufflenet/browser';
import { Calibrator, loadQuantizedModelFile, QuantizedPlan, type QuantizedNetwork } from 'shufflenet/browser-int8';
import { int8Calibration, type Network } from './models.js';

export { QuantizedPlan };

/** The network's int8 form: its paired int8 file, else calibration on random images. */
export function int8Network(baseUrl: string, network: Network): Promise<QuantizedNetwork> {
  return network.int8File !== undefined
    ? fetchInt8File(baseUrl, network, network.int8File)
    : Promise.resolve(calibrateOnRandomImages(network));
}

/** Fetches and checks the int8 file the manifest pairs with `network`'s model file. */
export async function fetchInt8File(baseUrl: string, network: Network, file: string): Promise<QuantizedNetwork> {
  const source = `models/${file}`;
  const response = await fetch(new URL(source, baseUrl));
  if (!response.ok) {
    throw new FormatError(
      `${source}: HTTP ${response.status} (listed in models/manifest.json as the int8 form of ${network.summary.source})`,
    );
  }
  const loaded = loadQuantizedModelFile(new Uint8Array(await response.arrayBuffer()), source);
  // One network in two precisions, or the page would show one network's answers beside another's.
  const pairs: [string, unknown, unknown][] = [
    ['architecture', loaded.info.architecture, network.architecture],
    ['preprocessing', loaded.info.preprocessing, network.preprocessing],
    ['labels', loaded.info.labels, network.summary.labels],
    ['input shape', loaded.quantization.inputShape, network.summary.inputShape],
  ];
  for (const [what, int8, float] of pairs) {
    if (JSON.stringify(int8) !== JSON.stringify(float)) {
      throw new FormatError(
        `${source} and ${network.summary.source}, paired in models/manifest.json, differ in ${what}`,
      );
    }
  }
  return loaded.network;
}

/**
 * Calibrates `network` on `int8Calibration.images` seeded random images of its input size, run
 * through its own preprocessing (on the reference executor: 0.5–3 s for the picker's networks in Node).
 */
export function calibrateOnRandomImages(network: Network): QuantizedNetwork {
  const { method, images, seed } = int8Calibration;
  const [, channels, height, width] = network.summary.inputShape as [number, 1 | 3, number, number];
  const calibrator = new Calibrator(network.graph, { method, images });
  const random = new Random(seed);
  for (let i = 0; i < images; i++) {
    const image: RawImage = {
      width,
      height,
      channels,
      data: Uint8Array.from({ length: width * height * channels }, () => random.int(256)),
    };
    calibrator.observe(preprocessImage(image, network.preprocessing)); // [1, C, H, W]
  }
  return calibrator.finish();
}
