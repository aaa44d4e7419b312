// Training: TrainingSession, ONNX Runtime's on-device training API for JavaScript
// (onnxruntime-common 1.17–1.19) rebuilt on stock onnxruntime-node
// InferenceSessions: one for the training graph (forward + backward), one for the
// eval graph, one for the flat optimizer model. Artifacts in grl-onnx's layout or in
// ONNX Runtime's own (rewritten on load, layouts/) run the same way.
//
// Memory: trainable parameters, gradients and optimizer state live in contiguous
// Float32Arrays allocated once at create time, in the training model's input order
// (ORT's order, slots.ts). Every per-parameter ort.Tensor is a view (subarray) of them,
// created once.
//
// What moves per step (onnxruntime-node 1.30; measured by scripts/bench-session.js,
// the binding facts are pinned by test/train/session.test.ts):
//  - feeds are zero-copy: ORT reads parameters (and, with the ONNX optimizer,
//    gradients and moments) in place;
//  - `<param>_grad` outputs are bound to views of the gradient buffer and ORT writes
//    them there directly, but the 1.30 binding also returns every fetched output as
//    a fresh ArrayBuffer copy, which we drop: one parameter-sized native copy per
//    train step, the only parameter-sized copy between ORT and JS;
//  - the update runs in-process by default (optimizerBackend 'js'): optimizer_model.onnx's
//    semantics fused into one pass over the buffers in place, no copy at all. The
//    buffers live in one WebAssembly memory (kernels/wasm.ts) and the pass is SIMD
//    wasm, ~6 ms for 5.4M parameters; buffers too big for wasm32's 4 GiB fall back to a
//    JS loop (~30 ms for 5.4M). With 'onnx', the optimizer model runs with
//    each output bound to its own input's buffer (safe: checkInPlaceSafe), and the
//    binding adds one more copy per output (3 for AdamW, 2 for SGD);
//  - gradient accumulation (a second runTrainStep without lazyResetGrad) binds the
//    gradients to a scratch buffer (reserved in the arena) and adds it in wasm;
//  - when the training model outputs an embedding table's gradient row-sparse (dY's rows and
//    their indices, see rows.ts; `grl-onnx train` builds it so), the session adds the rows into
//    the gradient buffer itself and, on the next fresh step, clears only those rows, so no
//    vocabulary-sized array moves per step.
// No JS code allocates a parameter-sized array per step.
import * as os from 'os';
import * as ort from 'onnxruntime-node';
import { GrlError } from '../onnx/errors';
import { createInferenceSession, createOrtSession as createModelSession } from '../onnx/ort';
import { Model, loadModel } from '../onnx/io';
import { CheckpointState, NamedTensor, PropertyBag, loadCheckpoint, saveCheckpoint, CHECKPOINT_VERSION, SESSION_PROPERTY } from './checkpoint';
import { SessionLayout, URIorBuffer, TrainingSessionCreateOptions, loadSessionLayout, resolveArtifacts } from './layouts/grl';
import { addCheckedRows, checkRows, zeroRows } from './rows';
import { ParamSlot, inTrainingInputOrder, paramSlots } from './slots';
import { exportWithWeights } from './export';
import type { RowGradientOutputs } from '../grad/training';
import {
  HYPERPARAMETER_INPUTS, OPTIMIZER_STATES, OptimizerHyperparameters, OptimizerKind, defaultHyperparameters, fusedOptimizerStep,
} from './optimizer';
import { LambdaSchedule, LrSchedule, lambdaAt, lrAt } from './schedules';
import { KernelArena, kernelsFor } from './kernels/wasm';

export type { TrainingSessionCreateOptions, URIorBuffer } from './layouts/grl';

export const LAMBDA_INPUT = /^grl\.(.+)\.lambda$/;

interface SessionSettings {
  optimizer?: OptimizerKind;
  learningRate?: number;
  hyperparameters?: OptimizerHyperparameters;
  /** Each head's current λ (the scheduled value when a schedule runs). */
  lambdas?: Record<string, number>;
  /** Each head's λ_max, which a schedule scales: early in a dann run λ itself is near 0. */
  lambdaMax?: Record<string, number>;
  /** The registered λ schedule, so a session created from the checkpoint continues it. */
  lambdaSchedule?: { schedule: LambdaSchedule; totalSteps: number };
}

/** What a session feeds a graph by itself: the parameter views, and each λ unless the caller feeds it. */
interface BoundFeeds {
  lambdas: Feeds;
  params: Feeds;
}

type Feeds = Record<string, ort.Tensor>;

function scalarTensor(v: number): ort.Tensor {
  return new ort.Tensor('float32', Float32Array.of(v), []);
}

async function createOrtSession(src: URIorBuffer | Model, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  if (typeof src === 'string' || src instanceof Uint8Array) return createInferenceSession(src, options, typeof src === 'string' ? src : '<model buffer>');
  return createModelSession(src, options);
}

export class TrainingSession {
  private readonly slots: ParamSlot[];
  private readonly params: Float32Array;
  private readonly grads: Float32Array;
  private scratch: Float32Array | undefined;
  private readonly states: Float32Array[];
  private readonly paramViews: Feeds = {};
  private readonly gradViews: Feeds = {};
  /** runTrainStep's fetches: gradients written into the gradient buffer, or the scratch buffer when accumulating. */
  private readonly gradFetches: Record<string, ort.Tensor | null>;
  private scratchFetches: Record<string, ort.Tensor | null> | undefined;
  private readonly trainBound: BoundFeeds;
  private readonly evalBound: BoundFeeds | undefined;
  private readonly paramsFlat: ort.Tensor;
  private readonly gradsFlat: ort.Tensor;
  private readonly statesFlat: ort.Tensor[];
  private readonly lambdaFeeds = new Map<string, { input: string; tensor: ort.Tensor }>();
  private readonly lrFeed = scalarTensor(0);
  private readonly stepFeed = new ort.Tensor('int64', BigInt64Array.of(1n), []);
  private readonly hyperFeeds: Record<string, ort.Tensor> = {};
  private gradsPending = false;
  private stepCount: number;
  private baseLr: number;
  private hyper: OptimizerHyperparameters;
  private lrSchedule: LrSchedule | ((step: number, baseLr: number) => number) | undefined;
  private lambdaSchedule: { schedule: LambdaSchedule; totalSteps: number; lambdaMax: Record<string, number> } | undefined;
  /** The last λ_max known (registered, or restored from the checkpoint); registerLambdaScheduler's default. */
  private lambdaMax: Record<string, number> | undefined;
  private lastGradNorm = NaN;
  private released = false;
  /** Frozen parameters: constants of the training graphs, carried into saved checkpoints. */
  private readonly frozen: NamedTensor[];
  private inferenceModel: Model | undefined;
  /** User properties saved in the checkpoint's property bag (data position, RNG seed, ...). */
  readonly properties: PropertyBag;

  readonly trainingInputNames: readonly string[];
  readonly trainingOutputNames: readonly string[];
  readonly evalInputNames: readonly string[];
  readonly evalOutputNames: readonly string[];
  readonly optimizerKind: OptimizerKind | undefined;

  private constructor(
    private readonly train: ort.InferenceSession,
    private readonly evalSession: ort.InferenceSession | undefined,
    private readonly optimizer: ort.InferenceSession | undefined,
    layout: SessionLayout,
    ckpt: CheckpointState,
    private readonly inferenceSource: URIorBuffer | undefined,
    rowGradOutputs: Record<string, RowGradientOutputs> | undefined,
  ) {
    // Only the frozen tensors outlive construction, detached from the checkpoint's file
    // buffer: holding views would keep the whole file (every parameter and moment) alive
    // beside the copies in the arena (a 438 MB file at BERT-base size).
    this.frozen = ckpt.frozen.map((t) => ({ ...t, data: detached(t.data) }));
    const trainable = inTrainingInputOrder(ckpt.trainable, train.inputNames);
    this.slots = paramSlots(trainable, new Set(train.outputNames), layout.gradOutputs, rowGradOutputs);
    const offset = trainable.reduce((n, t) => n + t.data.length, 0);
    const settings = readSettings(ckpt.properties);
    const group = ckpt.optimizerGroups[0];
    this.optimizerKind = layout.optimizerKind ?? settings.optimizer;
    this.stepCount = group?.step ?? 0;
    this.baseLr = settings.learningRate ?? group?.initialLearningRate ?? 1e-3;
    // An ORT-layout optimizer model fixes them in its node's attributes: those are what ORT runs.
    this.hyper = { ...defaultHyperparameters(this.optimizerKind ?? 'adamw'), ...settings.hyperparameters, ...layout.hyperparameters };

    // Parameters, gradients, accumulation scratch and moments in one WebAssembly memory
    // when they fit, so the update runs in SIMD (kernels/wasm.ts); else plain arrays.
    const stateNames = this.optimizerKind ? OPTIMIZER_STATES[this.optimizerKind] : [];
    const arena = KernelArena.create(Array.from({ length: 3 + stateNames.length }, () => offset));
    const buffer = (k: number) => arena?.views[k] ?? new Float32Array(offset);
    this.params = buffer(0);
    this.grads = buffer(1);
    // Reserved in the arena (untouched pages cost nothing); plain arrays allocate it on first accumulation.
    this.scratch = arena?.views[2];
    for (const [i, t] of trainable.entries()) this.params.set(t.data, this.slots[i].offset);
    for (const s of this.slots) {
      this.paramViews[s.name] = new ort.Tensor('float32', this.params.subarray(s.offset, s.offset + s.size), s.dims);
      this.gradViews[s.name] = new ort.Tensor('float32', this.grads.subarray(s.offset, s.offset + s.size), s.dims);
    }
    this.paramsFlat = new ort.Tensor('float32', this.params, [offset]);
    this.gradsFlat = new ort.Tensor('float32', this.grads, [offset]);
    this.states = stateNames.map((_, k) => buffer(3 + k));
    this.statesFlat = this.states.map((s) => new ort.Tensor('float32', s, [offset]));
    if (group && this.optimizerKind) this.loadOptimizerState(group.states);

    const { ints, floats, strings } = ckpt.properties;
    this.properties = { ints: { ...ints }, floats: { ...floats }, strings: { ...strings } };
    delete this.properties.strings[SESSION_PROPERTY];

    const paramNames = new Set(this.slots.map((s) => s.name));
    for (const input of train.inputNames) {
      const m = LAMBDA_INPUT.exec(input);
      if (!m) continue;
      const v = settings.lambdas?.[m[1]] ?? ckpt.properties.floats[input] ?? 1;
      this.lambdaFeeds.set(m[1], { input, tensor: scalarTensor(v) });
    }
    const lambdaInputs = new Set([...this.lambdaFeeds.values()].map((l) => l.input));
    const isUser = (n: string) => !paramNames.has(n) && !lambdaInputs.has(n);
    this.trainingInputNames = train.inputNames.filter(isUser);
    const gradNames = new Set(this.slots.flatMap((s) => (s.rows ? [s.rows.outputs.rows, s.rows.outputs.indices] : [s.grad])));
    this.trainingOutputNames = train.outputNames.filter((n) => !gradNames.has(n));
    this.evalInputNames = evalSession ? evalSession.inputNames.filter(isUser) : [];
    this.evalOutputNames = evalSession ? [...evalSession.outputNames] : [];
    this.validate();

    this.trainBound = this.bindFeeds(train.inputNames);
    this.evalBound = evalSession && this.bindFeeds(evalSession.inputNames);
    this.gradFetches = this.trainFetches(this.gradViews);
    this.lambdaMax = settings.lambdaMax;
    if (settings.lambdaSchedule) this.registerLambdaScheduler(settings.lambdaSchedule.schedule, settings.lambdaSchedule.totalSteps);
  }

  /**
   * Open a session from an artifacts folder, or from checkpoint and model paths or bytes.
   * ORT's intra-op threads default to the number of cores; graph optimisation to 'all', in
   * sequential execution (what the benchmarks compare against, set rather than left to ORT's defaults).
   */
  static async create(options: TrainingSessionCreateOptions | string, sessionOptions: ort.InferenceSession.SessionOptions = {}): Promise<TrainingSession> {
    const o = resolveArtifacts(options);
    const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: os.availableParallelism(), graphOptimizationLevel: 'all', executionMode: 'sequential', ...sessionOptions };
    const ckpt = o.checkpointState instanceof Uint8Array || typeof o.checkpointState === 'string' ? loadCheckpoint(o.checkpointState) : o.checkpointState;
    const layout = loadSessionLayout(o);
    const useOnnx = o.optimizerBackend === 'onnx';
    if (useOnnx && !layout.optimizerModel) throw new GrlError("optimizerBackend 'onnx' needs an optimizer model");
    const train = await createOrtSession(layout.trainModel, opts);
    const evalSession = o.evalModel ? await createOrtSession(o.evalModel, opts) : undefined;
    const optimizer = useOnnx && layout.optimizerModel ? await createOrtSession(layout.optimizerModel, opts) : undefined;
    return new TrainingSession(train, evalSession, optimizer, layout, ckpt, o.inferenceModel, o.rowGradOutputs);
  }

  private validate(): void {
    const inputs = new Set(this.train.inputNames);
    const outputs = new Set(this.train.outputNames);
    for (const s of this.slots) {
      if (!inputs.has(s.name)) throw new GrlError(`training model has no input for trainable parameter '${s.name}' listed in the checkpoint`);
      const wanted = s.rows ? [s.rows.outputs.rows, s.rows.outputs.indices] : [s.grad];
      for (const o of wanted) if (!outputs.has(o)) throw new GrlError(`training model has no output '${o}' for trainable parameter '${s.name}'`);
    }
    if (this.optimizer) {
      const want = ['learning_rate', 'step', 'params', 'gradients', ...OPTIMIZER_STATES[this.optimizerKind as OptimizerKind]];
      const missing = want.filter((n) => !this.optimizer?.inputNames.includes(n));
      if (missing.length) throw new GrlError(`optimizer model lacks inputs ${missing.join(', ')}`);
    }
  }

  private loadOptimizerState(states: CheckpointState['optimizerGroups'][number]['states']): void {
    const byName = new Map(states.map((s) => [s.paramName, s.momentums]));
    for (const slot of this.slots) {
      const listed = byName.get(slot.name);
      if (!listed) continue;
      // ORT names them momentum0, momentum1 and may write them in any order.
      const moms = listed.every((m) => /^momentum\d+$/.test(m.name)) ? [...listed].sort((a, b) => Number(a.name.slice(8)) - Number(b.name.slice(8))) : listed;
      if (moms.length !== this.states.length) throw new GrlError(`checkpoint has ${moms.length} optimizer states for '${slot.name}'; ${this.optimizerKind} needs ${this.states.length}`);
      moms.forEach((m, k) => {
        if (m.data.length !== slot.size) throw new GrlError(`checkpoint optimizer state ${m.name} of '${slot.name}' has ${m.data.length} values, the parameter ${slot.size}`);
        this.states[k].set(m.data, slot.offset);
      });
    }
  }

  // ------------------------------------------------------------ steps

  /** The parameter views and λ tensors a graph with these inputs reads (the tensors are updated in place). */
  private bindFeeds(inputNames: readonly string[]): BoundFeeds {
    const inputs = new Set(inputNames);
    const bound: BoundFeeds = { lambdas: {}, params: {} };
    for (const { input, tensor } of this.lambdaFeeds.values()) if (inputs.has(input)) bound.lambdas[input] = tensor;
    for (const s of this.slots) if (inputs.has(s.name)) bound.params[s.name] = this.paramViews[s.name];
    return bound;
  }

  /** The caller's feeds plus the bound ones: a caller's λ wins, the parameters always come from the session. */
  private static withBound(bound: BoundFeeds, user: Feeds): Feeds {
    return { ...bound.lambdas, ...user, ...bound.params };
  }

  private trainFetches(gradTargets: Feeds): Record<string, ort.Tensor | null> {
    const fetches: Record<string, ort.Tensor | null> = {};
    for (const o of this.trainingOutputNames) fetches[o] = null;
    for (const s of this.slots) {
      if (!s.rows) fetches[s.grad] = gradTargets[s.name];
      else fetches[s.rows.outputs.rows] = fetches[s.rows.outputs.indices] = null;
    }
    return fetches;
  }

  /** Forward + backward on one batch. Gradients add up until lazyResetGrad(). Returns the non-gradient outputs. */
  async runTrainStep(feeds: Feeds): Promise<Record<string, ort.Tensor>> {
    this.assertLive('runTrainStep');
    this.applyLambdaSchedule();
    const accumulate = this.gradsPending;
    if (accumulate && !this.scratchFetches) {
      const scratch = (this.scratch ??= new Float32Array(this.params.length));
      const views: Feeds = {};
      for (const s of this.slots) views[s.name] = new ort.Tensor('float32', scratch.subarray(s.offset, s.offset + s.size), s.dims);
      this.scratchFetches = this.trainFetches(views);
    }
    const fetches = accumulate ? (this.scratchFetches as Record<string, ort.Tensor | null>) : this.gradFetches;
    const result = await this.train.run(TrainingSession.withBound(this.trainBound, feeds), fetches);
    // Row-sparse gradients: a fresh step first clears the rows the last ones wrote (the rest of
    // the table is still zero) and adds the new rows into the gradient buffer. Accumulation adds
    // them into the scratch instead, whose table regions ORT never writes and so stay zero, for
    // the pass below to add, as for dense gradients: the same float32 sums, in the same order.
    // Every table's rows are checked before any is added, so a bad output leaves no rows behind
    // (the step's dense gradients are already written; a failed step's gradients are void).
    for (const s of this.slots) if (s.rows) checkRows(s.rows, result[s.rows.outputs.rows].data as Float32Array, result[s.rows.outputs.indices].data as BigInt64Array);
    for (const s of this.slots) {
      if (!s.rows) continue;
      const rows = s.rows;
      if (!accumulate) {
        for (const w of rows.written) zeroRows(this.grads, rows, w);
        rows.written = [];
      }
      const indices = result[rows.outputs.indices].data as BigInt64Array;
      addCheckedRows(accumulate ? (this.scratch as Float32Array) : this.grads, rows, result[rows.outputs.rows].data as Float32Array, indices);
      rows.written.push(indices);
    }
    if (accumulate) {
      const g = this.grads;
      const add = this.scratch as Float32Array;
      const kernels = kernelsFor(g, add);
      if (kernels) kernels.accumulate(g.byteOffset, add.byteOffset, g.length);
      else for (let i = 0; i < g.length; i++) g[i] += add[i];
      for (const s of this.slots) if (s.rows) zeroRows(add, s.rows, s.rows.written[s.rows.written.length - 1]);
    }
    this.gradsPending = true;
    const out: Record<string, ort.Tensor> = {};
    for (const o of this.trainingOutputNames) out[o] = result[o] as ort.Tensor;
    return out;
  }

  /** One optimizer update from the accumulated gradients, in place. */
  /**
   * One optimizer update. Returns false when the gradients were not finite: the JS update
   * then leaves parameters and moments untouched (the ONNX optimizer model cannot, and has
   * already applied it) and the step is not counted.
   */
  async runOptimizerStep(): Promise<boolean> {
    const kind = this.optimizerKind;
    if (!kind) throw new GrlError('this TrainingSession has no optimizer (no optimizer model, and the checkpoint names none)');
    const lr = this.getLearningRate();
    const step = this.stepCount + 1;
    if (this.optimizer) this.lastGradNorm = await this.runOnnxOptimizer(kind, lr, step);
    else this.lastGradNorm = fusedOptimizerStep(kind, { params: this.params, gradients: this.grads, states: this.states, learningRate: lr, step, hyper: this.hyper });
    if (!Number.isFinite(this.lastGradNorm)) return false;
    this.stepCount = step;
    return true;
  }

  private assertLive(what: string): void {
    if (this.released) throw new GrlError(`${what}: this TrainingSession was released`);
  }

  private async runOnnxOptimizer(kind: OptimizerKind, lr: number, step: number): Promise<number> {
    this.assertLive('runOptimizerStep');
    (this.lrFeed.data as Float32Array)[0] = lr;
    (this.stepFeed.data as BigInt64Array)[0] = BigInt(step);
    const feeds: Feeds = { learning_rate: this.lrFeed, step: this.stepFeed, params: this.paramsFlat, gradients: this.gradsFlat };
    const fetches: Record<string, ort.Tensor | null> = { params_out: this.paramsFlat, grad_norm: null };
    OPTIMIZER_STATES[kind].forEach((name, k) => {
      feeds[name] = this.statesFlat[k];
      fetches[`${name}_out`] = this.statesFlat[k];
    });
    for (const [input, field] of HYPERPARAMETER_INPUTS[kind]) {
      const t = (this.hyperFeeds[input] ??= scalarTensor(0));
      (t.data as Float32Array)[0] = this.hyper[field];
      feeds[input] = t;
    }
    const result = await (this.optimizer as ort.InferenceSession).run(feeds, fetches);
    return (result.grad_norm.data as Float32Array)[0];
  }

  /**
   * Count a step without updating (a skipped non-finite batch), so schedules and the
   * data order stay aligned with an uninterrupted run. Gradients are discarded.
   */
  skipOptimizerStep(): void {
    this.stepCount++;
    this.gradsPending = false;
  }

  /**
   * Multiply the accumulated gradients by `factor` (e.g. 1/N after N micro-batches, so
   * the update uses their mean, as PyTorch's loss/N convention does). One pass in place.
   */
  scaleGradients(factor: number): void {
    if (factor === 1) return;
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

  /** The next runTrainStep overwrites the gradients instead of adding to them. */
  async lazyResetGrad(): Promise<void> {
    this.gradsPending = false;
  }

  async runEvalStep(feeds: Feeds): Promise<Record<string, ort.Tensor>> {
    this.assertLive('runEvalStep');
    if (!this.evalSession || !this.evalBound) throw new GrlError('this TrainingSession has no eval model');
    const result = await this.evalSession.run(TrainingSession.withBound(this.evalBound, feeds));
    return result as Record<string, ort.Tensor>;
  }

  // ------------------------------------------------------------ parameters

  getParametersSize(trainableOnly = true): number {
    return this.params.length + (trainableOnly ? 0 : this.frozen.reduce((n, t) => n + t.data.length, 0));
  }

  /** A copy of the parameters as one float32 tensor: trainable in the training model's input order (ORT's), then frozen. */
  async getContiguousParameters(trainableOnly = true): Promise<ort.Tensor> {
    const out = new Float32Array(this.getParametersSize(trainableOnly));
    out.set(this.params);
    if (!trainableOnly) {
      let at = this.params.length;
      for (const t of this.frozen) {
        out.set(t.data, at);
        at += t.data.length;
      }
    }
    return new ort.Tensor('float32', out, [out.length]);
  }

  /** Replace the parameters from a buffer laid out like getContiguousParameters (bytes, as ORT takes, or floats). */
  async loadParametersBuffer(buffer: Uint8Array | Float32Array, trainableOnly = true): Promise<void> {
    const floats = buffer instanceof Float32Array ? buffer : new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
    const want = this.getParametersSize(trainableOnly);
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

  /** Parameter names in buffer order, with their offsets (for tools that slice the contiguous buffer). */
  get parameterLayout(): readonly ParamSlot[] {
    return this.slots;
  }

  /**
   * What runs the update: 'onnx' (optimizerBackend 'onnx'), 'wasm-simd' (the buffers live
   * in a KernelArena, the default) or 'js' (buffers too large for a wasm32 memory).
   */
  get updateKernel(): 'onnx' | 'wasm-simd' | 'js' {
    if (this.optimizer) return 'onnx';
    return kernelsFor(this.params, this.grads, ...this.states) ? 'wasm-simd' : 'js';
  }

  // ------------------------------------------------------------ lr, λ, hyperparameters

  /** The learning rate the next runOptimizerStep uses. */
  getLearningRate(): number {
    const s = this.lrSchedule;
    if (!s) return this.baseLr;
    return typeof s === 'function' ? s(this.stepCount, this.baseLr) : lrAt(s, this.baseLr, this.stepCount);
  }

  /** Set the base learning rate (a registered schedule scales it). */
  setLearningRate(lr: number): void {
    this.baseLr = lr;
  }

  /** A schedule, or a function of (0-based step, base lr) giving the lr of that step. */
  registerLearningRateScheduler(schedule: LrSchedule | ((step: number, baseLr: number) => number) | undefined): void {
    this.lrSchedule = schedule;
  }

  get optimizerStep(): number {
    return this.stepCount;
  }

  /** Global gradient L2 norm (before clipping) of the last optimizer step. */
  get lastGradientNorm(): number {
    return this.lastGradNorm;
  }

  getHyperparameters(): OptimizerHyperparameters {
    return { ...this.hyper };
  }

  setHyperparameters(h: Partial<OptimizerHyperparameters>): void {
    this.hyper = { ...this.hyper, ...h };
  }

  /** GRL heads and their current λ. */
  getLambdas(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [head, { tensor }] of this.lambdaFeeds) out[head] = (tensor.data as Float32Array)[0];
    return out;
  }

  setLambda(head: string, value: number): void {
    const l = this.lambdaFeeds.get(head);
    if (!l) throw new GrlError(`no gradient-reversal head '${head}' in the training model (heads: ${[...this.lambdaFeeds.keys()].join(', ') || 'none'})`);
    (l.tensor.data as Float32Array)[0] = value;
  }

  /**
   * Drive every λ from a schedule over `totalSteps` optimizer steps. A head's λ_max is the one
   * given, else the λ_max saved in the checkpoint the session was created from, else its current λ.
   * The schedule and λ_max are saved with checkpoints, so a resumed session continues the schedule.
   */
  registerLambdaScheduler(schedule: LambdaSchedule | undefined, totalSteps = 1, lambdaMax?: Record<string, number>): void {
    this.lambdaSchedule = schedule && { schedule, totalSteps, lambdaMax: { ...this.getLambdas(), ...this.lambdaMax, ...lambdaMax } };
    if (this.lambdaSchedule) this.lambdaMax = this.lambdaSchedule.lambdaMax;
  }

  private applyLambdaSchedule(): void {
    const s = this.lambdaSchedule;
    if (!s) return;
    for (const head of this.lambdaFeeds.keys()) this.setLambda(head, lambdaAt(s.schedule, s.lambdaMax[head] ?? 1, this.stepCount, s.totalSteps));
  }

  // ------------------------------------------------------------ checkpoint and export

  /** The session state as a checkpoint (tensor data are views of the live buffers). */
  checkpointState(): CheckpointState {
    const view = (buf: Float32Array, s: ParamSlot) => buf.subarray(s.offset, s.offset + s.size);
    const properties: PropertyBag = { ints: { ...this.properties.ints }, floats: { ...this.properties.floats }, strings: { ...this.properties.strings } };
    const ls = this.lambdaSchedule;
    const settings: SessionSettings = {
      optimizer: this.optimizerKind, learningRate: this.baseLr, hyperparameters: this.hyper, lambdas: this.getLambdas(),
      lambdaMax: this.lambdaMax, lambdaSchedule: ls && { schedule: ls.schedule, totalSteps: ls.totalSteps },
    };
    properties.strings[SESSION_PROPERTY] = JSON.stringify(settings);
    if (this.optimizerKind) properties.strings['optimizer'] = this.optimizerKind;
    properties.floats['learning_rate'] = this.getLearningRate();
    for (const [input, field] of this.optimizerKind ? HYPERPARAMETER_INPUTS[this.optimizerKind] : []) properties.floats[`optimizer.${input}`] = this.hyper[field];
    for (const { input, tensor } of this.lambdaFeeds.values()) properties.floats[input] = (tensor.data as Float32Array)[0];
    return {
      version: CHECKPOINT_VERSION,
      trainable: this.slots.map((s) => ({ name: s.name, dims: s.dims, data: view(this.params, s) })),
      frozen: this.frozen,
      optimizerGroups: this.optimizerKind
        ? [{
          name: 'group0',
          step: this.stepCount,
          initialLearningRate: this.baseLr,
          states: this.slots.map((s) => ({ paramName: s.name, momentums: this.states.map((buf, k): NamedTensor => ({ name: `momentum${k}`, dims: s.dims, data: view(buf, s) })) })),
        }]
        : [],
      properties,
    };
  }

  /** Write an ORT-format checkpoint atomically. */
  async saveCheckpoint(dest: string): Promise<void> {
    saveCheckpoint(this.checkpointState(), dest);
  }

  /**
   * Write the original inference graph (GRL nodes kept: identity at inference) with the
   * trained weights under the same initializer names.
   */
  async exportModelForInferencing(dest: string): Promise<void> {
    if (!this.inferenceModel) {
      if (!this.inferenceSource) throw new GrlError('exportModelForInferencing needs the original model: pass inferenceModel to TrainingSession.create (artifacts folders carry inference_model.onnx)');
      this.inferenceModel = loadModel(this.inferenceSource, { name: '<inference model>' });
    }
    const protect = typeof this.inferenceSource === 'string' ? [this.inferenceSource] : [];
    exportWithWeights(this.inferenceModel, this.slots, this.params, dest, protect);
  }

  /**
   * Release onnxruntime's sessions (and their memory). The parameters stay, so
   * exportModelForInferencing and checkpointState still work; steps do not. Idempotent.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.train.release();
    await this.evalSession?.release();
    await this.optimizer?.release();
  }
}

/** The values as an array of their own (not a view of a larger buffer that would stay alive with it). */
function detached(data: Float32Array): Float32Array {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
}

function readSettings(p: PropertyBag): SessionSettings {
  const text = p.strings[SESSION_PROPERTY];
  if (!text) return {};
  try {
    return JSON.parse(text) as SessionSettings;
  } catch {
    throw new GrlError(`checkpoint property '${SESSION_PROPERTY}' is not valid JSON`);
  }
}

