// Model I/O: the one import for loading and saving models. Loading lives in load.ts
// (with wire-scan.ts and external-data.ts), saving in save.ts (with encode.ts), and
// the atomic file primitives every writer uses in files.ts.
export { loadModel } from './load';
export type { Model, LoadOptions } from './load';
export { saveModel, externalFiles } from './save';
export type { SaveOptions } from './save';
export { serializeModel } from './encode';
export { AtomicFile, sameFile, writeFileAtomic } from './files';
