// Training: TrainingSession, ONNX Runtime's on-device training API for JavaScript
// (onnxruntime-common 1.17–1.19) rebuilt on stock onnxruntime-node
// InferenceSessions: one for the training graph (forward + backward), one for the
// eval graph, one for the flat optimizer model. Artifacts in grl-onnx's layout or in
// ONNX Runtime's own (rewritten on load, layouts/) run the same way. This class is the
// public API and the wiring; the parts live beside it:
//  - gradient-buffers.ts: parameters, gradients, accumulation scratch and optimizer moments,
//    contiguous Float32Arrays allocated once at create time in the training model's input
//    order (ORT's order, slots.ts), every per-parameter ort.Tensor a view of them made once;
//    the row-sparse gradient bookkeeping and accumulation;
//  - session-settings.ts: step count, learning rate and its schedule, hyperparameters,
//    each head's λ and its schedule, and how they are kept in checkpoints;
//  - onnx-optimizer.ts: the update through the optimizer model (optimizerBackend 'onnx');
//    optimizer.ts + kernels/: the in-process update;
//  - checkpoint/read-file.ts: a checkpoint given as a path is never loaded whole; each
//    tensor is read from the file straight into its place in the buffers.
//
// What moves per step (onnxruntime-node 1.30; measured by scripts/bench-session.js,
// the binding facts are pinned by test/train/session.test.ts):
//  - feeds are zero-copy: ORT reads parameters (and, with the ONNX optimizer,
//    gradients and moments) in place (gradient-buffers.ts' views);
//  - `<param>_grad` outputs are bound to views of the gradient buffer and ORT writes
//    them there directly, but the 1.30 binding also returns every fetched output as
//    a fresh ArrayBuffer copy, which we drop: one parameter-sized native copy per
//    train step, the only parameter-sized copy between ORT and JS;
//  - the update runs in-process by default (optimizerBackend 'js'): optimizer_model.onnx's
//    semantics fused into one pass over the buffers in place, no copy at all. The
//    buffers live in one WebAssembly memory (kernels/wasm.ts) and the pass is SIMD
//    wasm, ~6 ms for 5.4M parameters; buffers too big for wasm32's 4 GiB fall back to a
//    JS loop (~30 ms for 5.4M). With 'onnx' (onnx-optimizer.ts), the optimizer model runs
//    with each output bound to its own input's buffer (safe: checkInPlaceSafe), and the
//    binding adds one more copy per output (3 for AdamW, 2 for SGD);
//  - gradient accumulation (a second runTrainStep without lazyResetGrad) binds the
//    gradients to a scratch buffer (reserved in the arena) and adds it in wasm
//    (GradientBuffers.endStep);
//  - when the training model outputs an embedding table's gradient row-sparse (dY's rows and
//    their indices, see rows.ts; `grl-onnx train` builds it so), the session adds the rows into
//    the gradient buffer itself and, on the next fresh step, clears only those rows, so no
//    vocabulary-sized array moves per step (GradientBuffers.endStep).
// No JS code allocates a parameter-sized array per step.
import * as os from 'os';
import * as ort from 'onnxruntime-node';
import { GrlError } from '../onnx/errors';
import { createInferenceSession, createOrtSession as createModelSession } from '../onnx/ort';
import { Model, loadModel } from '../onnx/io';
import {
  CheckpointFile, CheckpointState, NamedTensor, PropertyBag, TensorPayload, asPayloads, loadCheckpoint, openCheckpoint, saveCheckpoint, CHECKPOINT_VERSION, SESSION_PROPERTY,
} from './checkpoint';
import { SessionLayout, URIorBuffer, TrainingSessionCreateOptions, loadSessionLayout, resolveArtifacts } from './layouts/grl';
import { ParamSlot, inTrainingInputOrder, paramSlots } from './slots';
import { exportWithWeights } from './export';
import type { RowGradientOutputs } from '../grad/training';
import { OPTIMIZER_STATES, OptimizerHyperparameters, OptimizerKind, fusedOptimizerStep } from './optimizer';
import { LambdaSchedule, LrSchedule } from './schedules';
import { Feeds, GradientBuffers } from './gradient-buffers';
import { SessionSettings } from './session-settings';
import { OnnxOptimizer } from './onnx-optimizer';

export type { TrainingSessionCreateOptions, URIorBuffer } from './layouts/grl';
export { LAMBDA_INPUT } from './session-settings';

/** What a session feeds a graph by itself: the parameter views, and each λ unless the caller feeds it. */
interface BoundFeeds {
  lambdas: Feeds;
  params: Feeds;
}

async function createOrtSession(src: URIorBuffer | Model, options: ort.InferenceSession.SessionOptions): Promise<ort.InferenceSession> {
  if (typeof src === 'string' || src instanceof Uint8Array) return createInferenceSession(src, options, typeof src === 'string' ? src : '<model buffer>');
  return createModelSession(src, options);
}

export class TrainingSession {
  private readonly buffers: GradientBuffers;
  private readonly settings: SessionSettings;
  private readonly optimizer: OnnxOptimizer | undefined;
  private readonly trainBound: BoundFeeds;
  private readonly evalBound: BoundFeeds | undefined;
  private lastGradNorm = NaN;
  private released = false;
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
    optimizerSession: ort.InferenceSession | undefined,
    layout: SessionLayout,
    ckpt: CheckpointState<TensorPayload>,
    private readonly inferenceSource: URIorBuffer | undefined,
    rowGradOutputs: Record<string, RowGradientOutputs> | undefined,
  ) {
    const group = ckpt.optimizerGroups[0];
    this.settings = new SessionSettings({
      properties: ckpt.properties, group, layoutOptimizer: layout.optimizerKind, layoutHyperparameters: layout.hyperparameters, trainInputNames: train.inputNames,
    });
    this.optimizerKind = this.settings.optimizerKind;
    this.optimizer = optimizerSession && new OnnxOptimizer(optimizerSession);
    const trainable = inTrainingInputOrder(ckpt.trainable, train.inputNames);
    const slots = paramSlots(trainable, new Set(train.outputNames), layout.gradOutputs, rowGradOutputs);
    // Only the frozen tensors outlive construction, in arrays of their own: views of a
    // checkpoint's bytes would keep the whole buffer (every parameter and moment) alive
    // beside the copies in the arena (1.3 GB at BERT-base size with AdamW).
    const frozen = ckpt.frozen.map(readTensor);
    const stateCount = this.optimizerKind ? OPTIMIZER_STATES[this.optimizerKind].length : 0;
    this.buffers = new GradientBuffers(slots, trainable, stateCount, frozen);
    if (group && this.optimizerKind) this.buffers.loadOptimizerState(group.states, this.optimizerKind);

    const { ints, floats, strings } = ckpt.properties;
    this.properties = { ints: { ...ints }, floats: { ...floats }, strings: { ...strings } };
    delete this.properties.strings[SESSION_PROPERTY];

    const paramNames = new Set(slots.map((s) => s.name));
    const lambdaInputs = this.settings.lambdaInputs();
    const isUser = (n: string) => !paramNames.has(n) && !lambdaInputs.has(n);
    this.trainingInputNames = train.inputNames.filter(isUser);
    const gradNames = this.buffers.gradientOutputs();
    this.trainingOutputNames = train.outputNames.filter((n) => !gradNames.has(n));
    this.evalInputNames = evalSession ? evalSession.inputNames.filter(isUser) : [];
    this.evalOutputNames = evalSession ? [...evalSession.outputNames] : [];
    this.validate();

    this.trainBound = this.bindFeeds(train.inputNames);
    this.evalBound = evalSession && this.bindFeeds(evalSession.inputNames);
  }

  /**
   * Open a session from an artifacts folder, or from checkpoint and model paths or bytes.
   * ORT's intra-op threads default to the number of cores; graph optimisation to 'all', in
   * sequential execution (what the benchmarks compare against, set rather than left to ORT's defaults).
   */
  static async create(options: TrainingSessionCreateOptions | string, sessionOptions: ort.InferenceSession.SessionOptions = {}): Promise<TrainingSession> {
    const o = resolveArtifacts(options);
    const opts: ort.InferenceSession.SessionOptions = { intraOpNumThreads: os.availableParallelism(), graphOptimizationLevel: 'all', executionMode: 'sequential', ...sessionOptions };
    // A checkpoint file stays on disk: its tensors are read straight into the session's buffers.
    const file: CheckpointFile | undefined = typeof o.checkpointState === 'string' ? openCheckpoint(o.checkpointState) : undefined;
    try {
      const ckpt = file?.state ?? asPayloads(o.checkpointState instanceof Uint8Array ? loadCheckpoint(o.checkpointState) : (o.checkpointState as CheckpointState));
      const layout = loadSessionLayout(o);
      const useOnnx = o.optimizerBackend === 'onnx';
      if (useOnnx && !layout.optimizerModel) throw new GrlError("optimizerBackend 'onnx' needs an optimizer model");
      const train = await createOrtSession(layout.trainModel, opts);
      const evalSession = o.evalModel ? await createOrtSession(o.evalModel, opts) : undefined;
      const optimizer = useOnnx && layout.optimizerModel ? await createOrtSession(layout.optimizerModel, opts) : undefined;
      try {
        return new TrainingSession(train, evalSession, optimizer, layout, ckpt, o.inferenceModel, o.rowGradOutputs);
      } catch (e) {
        // What the checkpoint holds did not fit: name the file it came from.
        if (file && e instanceof GrlError) throw new GrlError(`${o.checkpointState}: ${e.message}`, { file: o.checkpointState as string, cause: e });
        throw e;
      }
    } finally {
      file?.close();
    }
  }

  private validate(): void {
    const inputs = new Set(this.train.inputNames);
    const outputs = new Set(this.train.outputNames);
    for (const s of this.buffers.slots) {
      if (!inputs.has(s.name)) throw new GrlError(`training model has no input for trainable parameter '${s.name}' listed in the checkpoint`);
      const wanted = s.rows ? [s.rows.outputs.rows, s.rows.outputs.indices] : [s.grad];
      for (const o of wanted) if (!outputs.has(o)) throw new GrlError(`training model has no output '${o}' for trainable parameter '${s.name}'`);
    }
    this.optimizer?.validate(this.optimizerKind as OptimizerKind);
  }

  /** The gradient buffer (tests read it through this name). */
  private get grads(): Float32Array {
    return this.buffers.grads;
  }

  // ------------------------------------------------------------ steps

  /** The parameter views and λ tensors a graph with these inputs reads (the tensors are updated in place). */
  private bindFeeds(inputNames: readonly string[]): BoundFeeds {
    const inputs = new Set(inputNames);
    const bound: BoundFeeds = { lambdas: {}, params: {} };
    for (const { input, tensor } of this.settings.lambdaFeeds.values()) if (inputs.has(input)) bound.lambdas[input] = tensor;
    for (const s of this.buffers.slots) if (inputs.has(s.name)) bound.params[s.name] = this.buffers.paramViews[s.name];
    return bound;
  }

  /** The caller's feeds plus the bound ones: a caller's λ wins, the parameters always come from the session. */
  private static withBound(bound: BoundFeeds, user: Feeds): Feeds {
    return { ...bound.lambdas, ...user, ...bound.params };
  }

  /** Forward + backward on one batch. Gradients add up until lazyResetGrad(). Returns the non-gradient outputs. */
  async runTrainStep(feeds: Feeds): Promise<Record<string, ort.Tensor>> {
    this.assertLive('runTrainStep');
    this.settings.applyLambdaSchedule();
    const fetches = this.buffers.beginStep(this.trainingOutputNames);
    const result = await this.train.run(TrainingSession.withBound(this.trainBound, feeds), fetches);
    this.buffers.endStep(result);
    const out: Record<string, ort.Tensor> = {};
    for (const o of this.trainingOutputNames) out[o] = result[o] as ort.Tensor;
    return out;
  }

  /**
   * One optimizer update from the accumulated gradients, in place. Returns false when the
   * gradients were not finite: the JS update then leaves parameters and moments untouched
   * (the ONNX optimizer model cannot, and has already applied it) and the step is not counted.
   */
  async runOptimizerStep(): Promise<boolean> {
    const kind = this.optimizerKind;
    if (!kind) throw new GrlError('this TrainingSession has no optimizer (no optimizer model, and the checkpoint names none)');
    const lr = this.getLearningRate();
    const step = this.settings.step + 1;
    const { hyper } = this.settings;
    const b = this.buffers;
    if (this.optimizer) {
      this.assertLive('runOptimizerStep');
      this.lastGradNorm = await this.optimizer.run(kind, b, lr, step, hyper);
    } else {
      this.lastGradNorm = fusedOptimizerStep(kind, { params: b.params, gradients: b.grads, states: b.states, learningRate: lr, step, hyper });
    }
    if (!Number.isFinite(this.lastGradNorm)) return false;
    this.settings.step = step;
    return true;
  }

  private assertLive(what: string): void {
    if (this.released) throw new GrlError(`${what}: this TrainingSession was released`);
  }

  /**
   * Count a step without updating (a skipped non-finite batch), so schedules and the
   * data order stay aligned with an uninterrupted run. Gradients are discarded.
   */
  skipOptimizerStep(): void {
    this.settings.step++;
    this.buffers.resetLazily();
  }

  /**
   * Multiply the accumulated gradients by `factor` (e.g. 1/N after N micro-batches, so
   * the update uses their mean, as PyTorch's loss/N convention does). One pass in place.
   */
  scaleGradients(factor: number): void {
    if (factor === 1) return;
    this.buffers.scale(factor);
  }

  /** The next runTrainStep overwrites the gradients instead of adding to them. */
  async lazyResetGrad(): Promise<void> {
    this.buffers.resetLazily();
  }

  async runEvalStep(feeds: Feeds): Promise<Record<string, ort.Tensor>> {
    this.assertLive('runEvalStep');
    if (!this.evalSession || !this.evalBound) throw new GrlError('this TrainingSession has no eval model');
    const result = await this.evalSession.run(TrainingSession.withBound(this.evalBound, feeds));
    return result as Record<string, ort.Tensor>;
  }

  // ------------------------------------------------------------ parameters

  getParametersSize(trainableOnly = true): number {
    return this.buffers.parametersSize(trainableOnly);
  }

  /** A copy of the parameters as one float32 tensor: trainable in the training model's input order (ORT's), then frozen. */
  async getContiguousParameters(trainableOnly = true): Promise<ort.Tensor> {
    const out = this.buffers.contiguousParameters(trainableOnly);
    return new ort.Tensor('float32', out, [out.length]);
  }

  /** Replace the parameters from a buffer laid out like getContiguousParameters (bytes, as ORT takes, or floats). */
  async loadParametersBuffer(buffer: Uint8Array | Float32Array, trainableOnly = true): Promise<void> {
    const floats = buffer instanceof Float32Array ? buffer : new Float32Array(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + buffer.byteLength));
    this.buffers.loadParameters(floats, trainableOnly);
  }

  /** Parameter names in buffer order, with their offsets (for tools that slice the contiguous buffer). */
  get parameterLayout(): readonly ParamSlot[] {
    return this.buffers.slots;
  }

  /**
   * What runs the update: 'onnx' (optimizerBackend 'onnx'), 'wasm-simd' (the buffers live
   * in a KernelArena, the default) or 'js' (buffers too large for a wasm32 memory).
   */
  get updateKernel(): 'onnx' | 'wasm-simd' | 'js' {
    return this.optimizer ? 'onnx' : this.buffers.kernel;
  }

  // ------------------------------------------------------------ lr, λ, hyperparameters

  /** The learning rate the next runOptimizerStep uses. */
  getLearningRate(): number {
    return this.settings.learningRate();
  }

  /** Set the base learning rate (a registered schedule scales it). */
  setLearningRate(lr: number): void {
    this.settings.baseLr = lr;
  }

  /** A schedule, or a function of (0-based step, base lr) giving the lr of that step. */
  registerLearningRateScheduler(schedule: LrSchedule | ((step: number, baseLr: number) => number) | undefined): void {
    this.settings.lrSchedule = schedule;
  }

  get optimizerStep(): number {
    return this.settings.step;
  }

  /** Global gradient L2 norm (before clipping) of the last optimizer step. */
  get lastGradientNorm(): number {
    return this.lastGradNorm;
  }

  getHyperparameters(): OptimizerHyperparameters {
    return { ...this.settings.hyper };
  }

  setHyperparameters(h: Partial<OptimizerHyperparameters>): void {
    this.settings.hyper = { ...this.settings.hyper, ...h };
  }

  /** GRL heads and their current λ. */
  getLambdas(): Record<string, number> {
    return this.settings.getLambdas();
  }

  setLambda(head: string, value: number): void {
    this.settings.setLambda(head, value);
  }

  /**
   * Drive every λ from a schedule over `totalSteps` optimizer steps. A head's λ_max is the one
   * given, else the λ_max saved in the checkpoint the session was created from, else its current λ.
   * The schedule and λ_max are saved with checkpoints, so a resumed session continues the schedule.
   */
  registerLambdaScheduler(schedule: LambdaSchedule | undefined, totalSteps = 1, lambdaMax?: Record<string, number>): void {
    this.settings.registerLambdaScheduler(schedule, totalSteps, lambdaMax);
  }

  // ------------------------------------------------------------ checkpoint and export

  /** The session state as a checkpoint (tensor data are views of the live buffers). */
  checkpointState(): CheckpointState {
    const properties: PropertyBag = { ints: { ...this.properties.ints }, floats: { ...this.properties.floats }, strings: { ...this.properties.strings } };
    this.settings.writeProperties(properties);
    const { step, baseLr } = this.settings;
    return {
      version: CHECKPOINT_VERSION,
      trainable: this.buffers.trainableTensors(),
      frozen: this.buffers.frozen,
      optimizerGroups: this.optimizerKind ? [{ name: 'group0', step, initialLearningRate: baseLr, states: this.buffers.optimizerStates() }] : [],
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
    exportWithWeights(this.inferenceModel, this.buffers.slots, this.buffers.params, dest, protect);
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
    await this.optimizer?.session.release();
  }
}

/** The tensor's values in an array of their own. */
function readTensor(t: TensorPayload): NamedTensor {
  const data = new Float32Array(t.length);
  t.readInto(data);
  return { name: t.name, dims: t.dims, data };
}
