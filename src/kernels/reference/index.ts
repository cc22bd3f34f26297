export * from './conv2d.js';
export * from './pool2d.js';
export * from './normalization.js';
export * from './elementwise.js';
export * from './channels.js';
export * from './dense.js';
