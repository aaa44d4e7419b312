// Test helpers: ONNX Runtime's own training runtime (onnxruntime-web 1.19.2's training wasm, a
// devDependency) as an oracle. Each job runs in a child process (test/helpers/ort-oracle.js:
// the bundle's dynamic import() of its ES-module glue does not work inside jest), which is
// killed if ORT hangs. ORT's C++ exceptions come back as their message text.
import { spawn } from 'child_process';
import * as path from 'path';

export interface RawTensor { type: 'int64' | 'float32'; data: BigInt64Array | Float32Array; dims: number[] }
export type RawBatch = Record<string, RawTensor>;

export interface OrtJob {
  /** Paths of the artifact files ORT reads (as bytes). */
  files: { checkpointState: string; trainModel: string; evalModel?: string; optimizerModel?: string };
  batches?: RawBatch[];
  /** Each step: lazyResetGrad, runTrainStep on each listed batch, runOptimizerStep. */
  steps?: number[][];
  evalBatch?: number;
  /** getContiguousParameters after the last step (ORT 1.19.2 cannot step after it). */
  readParams?: boolean;
}

export interface OrtResult {
  trainingInputNames: string[];
  trainingOutputNames: string[];
  evalInputNames: string[];
  evalOutputNames: string[];
  /** The first training output (the loss) of every runTrainStep. */
  losses: number[];
  evalOutputs?: Record<string, number[]>;
  params?: Float32Array;
}

const ORACLE = path.join(__dirname, 'ort-oracle.js');

/** Run a job on ORT's TrainingSession; rejects with ORT's own message when it refuses. */
export function runOrt(job: OrtJob, timeoutMs = 60000): Promise<OrtResult> {
  const batches = job.batches?.map((b) => Object.fromEntries(Object.entries(b).map(([k, t]) => [k, { type: t.type, dims: t.dims, data: Array.from(t.data as ArrayLike<number | bigint>, (v) => (typeof v === 'bigint' ? Number(v) : v)) }])));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ORACLE], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`onnxruntime-web did not finish within ${timeoutMs} ms`)); }, timeoutMs);
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      let r: OrtResult & { error?: string; params?: unknown };
      try {
        r = JSON.parse(out);
      } catch {
        reject(new Error(`onnxruntime-web oracle failed (exit ${code ?? signal}): ${err.trim().split('\n').slice(-3).join(' ')}`));
        return;
      }
      if (r.error !== undefined) reject(new Error(`onnxruntime-web: ${r.error}`));
      else resolve({ ...r, params: r.params ? Float32Array.from(r.params as number[]) : undefined });
    });
    child.stdin.end(JSON.stringify({ ...job, batches }));
  });
}
