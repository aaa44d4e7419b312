// Training: the optimizer's hot loops in WebAssembly SIMD, and the memory they run in.
//
// A KernelArena is one WebAssembly.Memory holding a session's contiguous float32
// buffers (parameters, gradients, optimizer moments, the accumulation scratch), sized
// once at create time and never grown (growing would detach every view ORT holds).
// onnxruntime-node reads and writes the same views zero-copy, so the update runs in
// place with no copy. For 5.4M parameters the AdamW update takes ~6 ms here against
// ~30 ms for the scalar JS loop (scripts/bench-train.js). Buffers that do not fit a
// wasm32 memory (4 GiB: ~200M parameters with AdamW) stay plain Float32Arrays and the
// JS loop in optimizer.ts updates them.
import { OPTIMIZER_WASM_BASE64 } from './optimizer-wasm';

interface KernelExports {
  sumsq(g: number, n: number): number;
  adamw(p: number, g: number, m: number, v: number, n: number, scale: number, decay: number,
    b1: number, c1: number, b2: number, c2: number, negStep: number, bc2Sqrt: number, eps: number): void;
  sgd(p: number, g: number, buf: number, n: number, scale: number, wd: number, mom: number, negLr: number): void;
  accumulate(dst: number, src: number, n: number): void;
}

// The few WebAssembly JS API members used here (the project's lib is ES2022, without DOM).
interface WasmMemory { readonly buffer: ArrayBuffer }
interface WasmModule { readonly __wasmModule?: never }
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => WasmModule;
  Instance: new (module: WasmModule, imports: Record<string, Record<string, unknown>>) => { exports: unknown };
  Memory: new (descriptor: { initial: number; maximum: number }) => WasmMemory;
};

const PAGE = 65536;
/** wasm32's limit: 65536 pages of 64 KiB. */
export const MAX_ARENA_BYTES = 65536 * PAGE;
/** Each buffer starts on a cache line. */
const ALIGN = 64;

let compiled: WasmModule | undefined | null;

function kernelModule(): WasmModule | undefined {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(Buffer.from(OPTIMIZER_WASM_BASE64, 'base64'));
    } catch {
      compiled = null; // no WebAssembly SIMD in this runtime: the JS loop takes over
    }
  }
  return compiled ?? undefined;
}

/** Arena memories by their buffer, so the optimizer can tell whether its arrays live in one. */
const arenas = new WeakMap<ArrayBufferLike, KernelExports>();

export class KernelArena {
  private constructor(readonly views: Float32Array[], readonly kernels: KernelExports) {}

  /**
   * One memory holding a zeroed Float32Array per entry of `lengths`; undefined when they
   * do not fit a wasm32 memory (or `limitBytes`) or WebAssembly is unavailable.
   */
  static create(lengths: number[], limitBytes = MAX_ARENA_BYTES): KernelArena | undefined {
    const offsets: number[] = [];
    let bytes = 0;
    for (const n of lengths) {
      offsets.push(bytes);
      bytes += Math.ceil((n * 4) / ALIGN) * ALIGN;
    }
    if (bytes > Math.min(limitBytes, MAX_ARENA_BYTES)) return undefined;
    // The kernels take a buffer's byte length 4n as an i32: a single 4 GiB buffer would wrap to 0.
    if (lengths.some((n) => n * 4 >= MAX_ARENA_BYTES)) return undefined;
    const mod = kernelModule();
    if (!mod) return undefined;
    const pages = Math.max(1, Math.ceil(bytes / PAGE));
    let memory: WasmMemory;
    try {
      memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    } catch {
      return undefined; // the engine refused the reservation
    }
    const kernels = new WebAssembly.Instance(mod, { env: { memory } }).exports as unknown as KernelExports;
    arenas.set(memory.buffer, kernels);
    return new KernelArena(lengths.map((n, k) => new Float32Array(memory.buffer, offsets[k], n)), kernels);
  }
}

/** The kernels of the arena every array lives in, or undefined (then use the JS loop). */
export function kernelsFor(...arrays: Float32Array[]): KernelExports | undefined {
  const kernels = arrays.length ? arenas.get(arrays[0].buffer) : undefined;
  return kernels && arrays.every((a) => a.buffer === arrays[0].buffer) ? kernels : undefined;
}
