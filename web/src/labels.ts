/**
 * Class names for networks built without a model file. A model file carries its own labels; this
 * list is Fashion-MNIST's (src/node/data/mnist.ts holds the same list on the Node side, which the
 * browser cannot import; test/web.test.ts keeps the two equal).
 */
export const fashionMnistLabels = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;
