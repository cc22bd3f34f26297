// Writes the browser page's sample images and the end-to-end test's fixture: the first test image
// of a few Fashion-MNIST classes (our split, docs/data.md), as 28×28 grayscale PNGs.
// Run after `npm run build`: node scripts/make-web-samples.mjs
import { mkdirSync, writeFileSync } from 'node:fs';
import sharp from 'sharp';
import { loadFashionMnist } from '../dist/node/data/mnist.js';

const { dataset } = loadFashionMnist('test');
const wanted = ['Trouser', 'Sneaker', 'Bag', 'Dress'];
const written = [];
for (const name of wanted) {
  const cls = dataset.classes.indexOf(name);
  let i = 0;
  while (dataset.label(i) !== cls) i++;
  const png = await sharp(Buffer.from(dataset.pixels(i)), { raw: { width: 28, height: 28, channels: 1 } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  const file = `${name.toLowerCase().replace(/[^a-z]+/g, '-')}.png`;
  mkdirSync('web/public/samples', { recursive: true });
  writeFileSync(`web/public/samples/${file}`, png);
  written.push({ file, label: name, testIndex: i });
}
writeFileSync('web/public/samples/samples.json', JSON.stringify({ samples: written }, null, 2) + '\n');
// The e2e fixture is a copy, so that the test does not depend on what the page offers.
mkdirSync('test/fixtures/web', { recursive: true });
writeFileSync('test/fixtures/web/trouser.png', await sharp('web/public/samples/trouser.png').png().toBuffer());
console.log(written);
