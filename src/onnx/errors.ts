// Typed errors shared by the whole pipeline. Library code throws these; only the
// CLI (src/cli) turns them into one line on stderr and an exit code.

/** An error a user can act on: bad input, unknown head, unsupported op. Printed as one line. */
export class GrlError extends Error {
  /** The file (or '<stdin>') the error is about, when there is one. */
  readonly file?: string;
  readonly exitCode: number;
  constructor(message: string, opts: { file?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message);
    this.name = 'GrlError';
    this.file = opts.file;
    this.exitCode = opts.exitCode ?? 1;
    if (opts.cause !== undefined) (this as { cause?: unknown }).cause = opts.cause;
  }
}

/** The input is not a loadable ONNX model (empty, truncated, JSON, random bytes, dangling external data). */
export class ModelFormatError extends GrlError {
  constructor(file: string, message: string, cause?: unknown) {
    super(`${file}: ${message}`, { file, cause });
    this.name = 'ModelFormatError';
  }
}

/** A graph is structurally invalid (dangling input, cycle, duplicate output) or cannot be transformed. */
export class GraphError extends GrlError {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}
