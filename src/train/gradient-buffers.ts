// Training: a TrainingSession's buffers. Trainable parameters, gradients, the gradient
// accumulation scratch and the optimizer moments are contiguous Float32Arrays allocated
// once, in the training model's input order (slots.ts), in one WebAssembly memory when
// they fit (kernels/wasm.ts) so the update and the accumulation run in SIMD. Every
// per-parameter ort.Tensor is a view of them, made once: ORT reads the parameters and
// writes the gradients in place.
//
// Row-sparse gradients (rows.ts) are added here: a fresh step clears only the rows the
// previous steps wrote, so no vocabulary-sized array moves per step.
import * as ort from 'onnxruntime-node';
import { GrlError } from '../onnx/errors';
import type { NamedTensor, ParameterOptimizerState, TensorPayload } from './checkpoint';
import { addCheckedRows, checkRows, zeroRows } from './rows';
import type { ParamSlot, RowSlot } from './slots';
import { KernelArena, kernelsFor } from './kernels/wasm';

export type Feeds = Record<string, ort.Tensor>;
export type Fetches = Record<string, ort.Tensor | null>;

export class GradientBuffers {
  readonly params: Float32Array;
  readonly grads: Float32Array;
  /** Reserved in the arena (untouched pages cost nothing); plain arrays allocate it on first accumulation. */
  private scratch: Float32Array | undefined;
  /** Optimizer moments, in checkpoint order (OPTIMIZER_STATES). */
  readonly states: Float32Array[];
  readonly paramViews: Feeds = {};
  readonly paramsFlat: ort.Tensor;
  readonly gradsFlat: ort.Tensor;
  readonly statesFlat: ort.Tensor[];
  /** Train-step fetches: gradients written into the gradient buffer, or into the scratch when accumulating. */
  private gradFetches: Fetches | undefined;
  private scratchFetches: Fetches | undefined;
  /** Gradients hold a step's values: the next train step adds to them. */
  private pending = false;
  /** The current step adds into the scratch (decided by beginStep). */
  private accumulating = false;
  /** The row-sparse tables, found once rather than on every step. */
  private readonly rowTables: RowSlot[];

  /**
   * `trainable` in slot order, each read straight into its place in the parameter buffer;
   * `frozen` are constants of the training graphs, kept only to be carried into checkpoints.
   */
  constructor(readonly slots: ParamSlot[], trainable: TensorPayload[], stateCount: number, readonly frozen: NamedTensor[]) {
    this.rowTables = slots.flatMap((s) => (s.rows ? [s.rows] : []));
    const size = trainable.reduce((n, t) => n + t.length, 0);
    const arena = KernelArena.create(Array.from({ length: 3 + stateCount }, () => size));
    const buffer = (k: number) => arena?.views[k] ?? new Float32Array(size);
    this.params = buffer(0);
    this.grads = buffer(1);
    this.scratch = arena?.views[2];
    for (const [i, t] of trainable.entries()) t.readInto(this.params.subarray(slots[i].offset, slots[i].offset + slots[i].size));
    for (const s of slots) this.paramViews[s.name] = this.view(this.params, s);
    this.paramsFlat = new ort.Tensor('float32', this.params, [size]);
    this.gradsFlat = new ort.Tensor('float32', this.grads, [size]);
    this.states = Array.from({ length: stateCount }, (_, k) => buffer(3 + k));
    this.statesFlat = this.states.map((s) => new ort.Tensor('float32', s, [size]));
  }

  private view(buf: Float32Array, s: ParamSlot): ort.Tensor {
    return new ort.Tensor('float32', buf.subarray(s.offset, s.offset + s.size), s.dims);
  }

  /** Copy the checkpoint's moments into the state buffers (`kind` names the optimizer in errors). */
  loadOptimizerState(states: ParameterOptimizerState<TensorPayload>[], kind: string): void {
    const byName = new Map(states.map((s) => [s.paramName, s.momentums]));
    for (const slot of this.slots) {
      const listed = byName.get(slot.name);
      if (!listed) continue;
      // ORT names them momentum0, momentum1 and may write them in any order.
      const moms = listed.every((m) => /^momentum\d+$/.test(m.name)) ? [...listed].sort((a, b) => Number(a.name.slice(8)) - Number(b.name.slice(8))) : listed;
      if (moms.length !== this.states.length) throw new GrlError(`checkpoint has ${moms.length} optimizer states for '${slot.name}'; ${kind} needs ${this.states.length}`);
      moms.forEach((m, k) => {
        if (m.length !== slot.size) throw new GrlError(`checkpoint optimizer state ${m.name} of '${slot.name}' has ${m.length} values, the parameter ${slot.size}`);
        m.readInto(this.states[k].subarray(slot.offset, slot.offset + slot.size));
      });
    }
  }

  // ------------------------------------------------------------ train steps

  /** The training-graph outputs that carry gradients (dense, or a table's rows and indices). */
  gradientOutputs(): Set<string> {
    return new Set(this.slots.flatMap((s) => (s.rows ? [s.rows.outputs.rows, s.rows.outputs.indices] : [s.grad])));
  }

  /**
   * The fetches of the next train step, whose other outputs are `outputNames`: the gradients
   * go to the gradient buffer on a fresh step, to the scratch when accumulating.
   */
  beginStep(outputNames: readonly string[]): Fetches {
    this.accumulating = this.pending;
    if (!this.accumulating) return (this.gradFetches ??= this.fetches(outputNames, this.grads));
    if (!this.scratchFetches) this.scratchFetches = this.fetches(outputNames, (this.scratch ??= new Float32Array(this.params.length)));
    return this.scratchFetches;
  }

  private fetches(outputNames: readonly string[], target: Float32Array): Fetches {
    const fetches: Fetches = {};
    for (const o of outputNames) fetches[o] = null;
    for (const s of this.slots) {
      if (!s.rows) fetches[s.grad] = this.view(target, s);
      else fetches[s.rows.outputs.rows] = fetches[s.rows.outputs.indices] = null;
    }
    return fetches;
  }

  /** After the train step's run: add its row-sparse gradients and, when accumulating, the scratch. */
  endStep(result: Record<string, ort.OnnxValue>): void {
    // Row-sparse gradients: a fresh step first clears the rows the last ones wrote (the rest of
    // the table is still zero) and adds the new rows into the gradient buffer. Accumulation adds
    // them into the scratch instead, whose table regions ORT never writes and so stay zero, for
    // the pass below to add, as for dense gradients: the same float32 sums, in the same order.
    // Every table's rows are checked before any is added, so a bad output leaves no rows behind
    // (the step's dense gradients are already written; a failed step's gradients are void).
    const rowsOf = (r: RowSlot) => result[r.outputs.rows].data as Float32Array;
    const indicesOf = (r: RowSlot) => result[r.outputs.indices].data as BigInt64Array;
    const tables = this.rowTables;
    for (const r of tables) checkRows(r, rowsOf(r), indicesOf(r));
    for (const r of tables) {
      if (!this.accumulating) {
        for (const w of r.written) zeroRows(this.grads, r, w);
        r.written = [];
      }
      addCheckedRows(this.accumulating ? (this.scratch as Float32Array) : this.grads, r, rowsOf(r), indicesOf(r));
      r.written.push(indicesOf(r));
    }
    if (this.accumulating) this.addScratch(tables);
    this.pending = true;
  }

  /** grads += scratch, then clear the scratch's table rows this step wrote (ORT rewrites the rest every step). */
  private addScratch(tables: RowSlot[]): void {
    const g = this.grads;
    const add = this.scratch as Float32Array;
    const kernels = kernelsFor(g, add);
    if (kernels) kernels.accumulate(g.byteOffset, add.byteOffset, g.length);
    else for (let i = 0; i < g.length; i++) g[i] += add[i];
    for (const r of tables) zeroRows(add, r, r.written[r.written.length - 1]);
  }

  /** The next train step overwrites the gradients instead of adding to them. */
  resetLazily(): void {
    this.pending = false;
  }

  /** Multiply the accumulated gradients by `factor`, in place. */
  scale(factor: number): void {
    const g = this.grads;
    // A row-sparse table is zero outside the rows written since the last reset: scale only
    // those (0 * Infinity would otherwise leave NaN rows that nothing clears).
    for (const s of this.slots) {
      if (!s.rows) {
        for (let i = s.offset; i < s.offset + s.size; i++) g[i] *= factor;
        continue;
      }
      const { offset, width } = s.rows;
      const seen = new Set<number>();
      for (const w of s.rows.written) {
        for (const idx of w) {
          const row = Number(idx);
          if (seen.has(row)) continue;
          seen.add(row);
          for (let i = offset + row * width; i < offset + (row + 1) * width; i++) g[i] *= factor;
        }
      }
    }
  }

  /** 'wasm-simd' when the buffers live in one KernelArena, else 'js'. */
  get kernel(): 'wasm-simd' | 'js' {
    return kernelsFor(this.params, this.grads, ...this.states) ? 'wasm-simd' : 'js';
  }

  // ------------------------------------------------------------ parameters

  parametersSize(trainableOnly: boolean): number {
    return this.params.length + (trainableOnly ? 0 : this.frozen.reduce((n, t) => n + t.data.length, 0));
  }

  /** A copy: trainable in slot order, then (unless trainableOnly) frozen. */
  contiguousParameters(trainableOnly: boolean): Float32Array {
    const out = new Float32Array(this.parametersSize(trainableOnly));
    out.set(this.params);
    if (!trainableOnly) {
      let at = this.params.length;
      for (const t of this.frozen) {
        out.set(t.data, at);
        at += t.data.length;
      }
    }
    return out;
  }

  /** Replace the parameters from floats laid out like contiguousParameters; frozen values must match. */
  loadParameters(floats: Float32Array, trainableOnly: boolean): void {
    const want = this.parametersSize(trainableOnly);
    if (floats.length !== want) throw new GrlError(`loadParametersBuffer: got ${floats.length} floats, the session has ${want}`);
    if (!trainableOnly) {
      let at = this.params.length;
      for (const t of this.frozen) {
        const part = floats.subarray(at, at + t.data.length);
        if (part.some((v, i) => !Object.is(v, t.data[i]))) throw new GrlError(`loadParametersBuffer: frozen parameter '${t.name}' differs; frozen parameters are constants of the training graphs (regenerate the artifacts to change them)`);
        at += t.data.length;
      }
    }
    this.params.set(floats.subarray(0, this.params.length));
  }

  // ------------------------------------------------------------ checkpoint

  /** The trainable parameters as checkpoint tensors (views of the live buffer). */
  trainableTensors(): NamedTensor[] {
    return this.slots.map((s) => ({ name: s.name, dims: s.dims, data: this.params.subarray(s.offset, s.offset + s.size) }));
  }

  /** Each parameter's moments as checkpoint tensors (ORT's names momentum0, momentum1; views of the live buffers). */
  optimizerStates(): ParameterOptimizerState[] {
    return this.slots.map((s) => ({
      paramName: s.name,
      momentums: this.states.map((buf, k): NamedTensor => ({ name: `momentum${k}`, dims: s.dims, data: buf.subarray(s.offset, s.offset + s.size) })),
    }));
  }
}
