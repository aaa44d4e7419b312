// onnxruntime's run-time failures as one line a user can act on. ORT reports a
// failed kernel as `Non-zero status code returned while running OP node.
// Name:'NODE' Status Message: /onnxruntime_src/...cc:LINE <C++ signature> <text>`;
// we keep the node, the op and the useful part of the text, and say what to do.
// Light on purpose (no onnxruntime import): the CLI loads it to report any error.
import { GrlError } from './errors';

/** The part of an ORT status message after its source location and C++ check text. */
function statusText(status: string): string {
  let s = status.split('\n')[0].replace(/^\s*\/?[\w./-]*onnxruntime[\w./-]*:\d+\s*/, '');
  // `void onnxruntime::X::Init(...) cond was false. Real message`: keep the real message.
  const wasFalse = s.indexOf(' was false. ');
  if (wasFalse >= 0) s = s.slice(wasFalse + ' was false. '.length);
  else s = s.replace(/^[\w:<>,\s*&]*onnxruntime::[\w:<>]+\([^)]*\)\s*(const\s*)?/, '');
  return s.trim();
}

/** What the user can do about a failure, from its text and op. */
function advice(op: string, text: string): string {
  if (/broadcast/i.test(text)) {
    return 'two of its inputs have shapes that do not fit together: if one is an initializer, the model file is inconsistent (`grl-onnx inspect MODEL` lists such problems); if one follows the sequence length, check the data against the model\'s sequence limit';
  }
  if (/out of (data )?bounds|must be within/i.test(text)) {
    return op === 'Gather' ? 'an index is outside the table it reads: an id in the data is not in the model\'s vocabulary (is the tokenizer the model\'s?) or a sequence is longer than its position table' : 'an index is out of range for this node\'s input';
  }
  if (/reshape/i.test(text) || op === 'Reshape') return 'a Reshape got a tensor whose size does not match the shape it asks for (a fixed shape baked into the export, or an initializer of the wrong size)';
  if (/allocat|bad_alloc|out of memory/i.test(text)) return 'onnxruntime ran out of memory: lower --batch-size (and raise --grad-accum to keep the effective batch) or shorten the sequences';
  if (op === 'MatMul' || op === 'Gemm') return 'the inner dimensions of the multiplication do not match: an initializer has the wrong shape for the graph (`grl-onnx inspect MODEL`)';
  return 'rerun with --debug for onnxruntime\'s log';
}

const KERNEL = /Non-zero status code returned while running (\S+) node\. Name:'([^']*)' Status Message: ([\s\S]*)/;

/**
 * A GrlError for an onnxruntime run failure (node, op, what went wrong, what to do), or
 * undefined when `e` is not one.
 */
export function explainOrtError(e: unknown): GrlError | undefined {
  // Not `instanceof Error`: the native binding's errors may come from another realm.
  const msg = (e as { message?: unknown } | null)?.message;
  if (typeof msg !== 'string' || e instanceof GrlError) return undefined;
  const k = KERNEL.exec(msg);
  if (k) {
    const [, op, node, status] = k;
    const text = statusText(status).replace(/Attempting to broadcast an axis by a dimension other than 1\. (\d+) by (\d+)/, 'cannot broadcast a dimension of $1 against $2');
    return new GrlError(`onnxruntime failed at node '${node}' (${op}): ${text.replace(/\.$/, '')}; ${advice(op, text)}`, { cause: e });
  }
  const dims = /Got invalid dimensions for input: (\S+) for the following indices\s*index: (\d+) Got: (\d+) Expected: (\d+)/.exec(msg);
  if (dims) {
    const [, input, index, got, want] = dims;
    return new GrlError(`onnxruntime refused input '${input}': dimension ${index} is ${got} but the model expects ${want}; the model fixes that dimension (\`grl-onnx inspect MODEL\` shows its input and output shapes)`, { cause: e });
  }
  const type = /Unexpected input data type\. Actual: \((.+?)\)\s*,\s*expected: \((.+?)\)/.exec(msg);
  if (type) return new GrlError(`onnxruntime refused an input of type ${type[1]}: the model expects ${type[2]}`, { cause: e });
  if (/Failed to allocate memory/i.test(msg)) return new GrlError(`onnxruntime ran out of memory (${msg.split('\n')[0]}); lower --batch-size (and raise --grad-accum to keep the effective batch) or shorten the sequences`, { cause: e });
  return undefined;
}
