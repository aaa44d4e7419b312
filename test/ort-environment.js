// Jest runs each test file in its own vm context, so typed-array constructors in
// tests differ from the ones onnxruntime-node's native binding creates outputs
// with, and `instanceof Float32Array` checks inside onnxruntime-common fail.
// This environment shares the host realm's typed arrays and buffers with tests.
const { TestEnvironment } = require('jest-environment-node');

class OrtEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of [
      'Float32Array', 'Float64Array', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array', 'Uint16Array',
      'Int32Array', 'Uint32Array', 'BigInt64Array', 'BigUint64Array', 'ArrayBuffer', 'SharedArrayBuffer', 'DataView',
    ]) {
      this.global[name] = globalThis[name];
    }
  }
}

module.exports = OrtEnvironment;
