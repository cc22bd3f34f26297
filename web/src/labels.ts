/** Class names for networks built without a model file (a model file carries its own labels). */
export { fashionMnistClasses as fashionMnistLabels } from 'shufflenet/browser';
