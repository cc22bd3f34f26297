/** Class names of the datasets the npm packages ship (browser-safe, so the web page shares them). */
export const fashionMnistClasses = [
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

export const mnistClasses = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;
