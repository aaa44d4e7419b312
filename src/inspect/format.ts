// `grl-onnx inspect`, human output: renders an InspectReport as text.
// Pure (returns a string); the CLI decides where it goes.
import type { InspectReport, TensorSummary } from './inspect';

const num = (n: number) => n.toLocaleString('en-US');
/** A float32 attribute (λ) as the decimal it was written from: 0.1, not 0.10000000149011612. */
const f32 = (x: number) => Number(x.toPrecision(7));

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

function tensorLine(t: TensorSummary, width: number): string {
  const shape = t.shape ? `[${t.shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]` : '(shape unknown)';
  return `    ${t.name.padEnd(width)}  ${t.type.toLowerCase().padEnd(7)} ${shape}`;
}

/** "812 static, 14 from an onnxruntime run" (and how many stay unknown). */
function rankCounts(r: InspectReport): string {
  const parts = [`${num(r.ranks.static)} static`];
  if (r.ranks.onnxruntime) parts.push(`${num(r.ranks.onnxruntime)} from an onnxruntime run`);
  if (r.ranks.unknown) parts.push(`${num(r.ranks.unknown)} unknown`);
  return parts.join(', ');
}

export function formatInspectReport(r: InspectReport): string {
  const lines: string[] = [];
  const width = Math.max(0, ...[...r.inputs, ...r.outputs].map((t) => t.name.length));
  lines.push(r.file);
  lines.push(`  IR ${r.irVersion}; opsets ${r.opsets.map((o) => `${o.domain} ${o.version}`).join(', ')}; producer ${[r.producer.name, r.producer.version].filter(Boolean).join(' ') || '(none)'}`);
  lines.push('  inputs:');
  for (const t of r.inputs) lines.push(tensorLine(t, width));
  lines.push('  outputs:');
  for (const t of r.outputs) lines.push(tensorLine(t, width));
  const ext = r.externalInitializers ? `, ${r.externalInitializers} stored externally` : '';
  lines.push(`  parameters: ${num(r.parameters)} (${formatBytes(r.initializerBytes)} in ${r.initializerCount} initializers${ext})`);
  lines.push(`  nodes: ${num(r.nodeCount)}; ops: ${r.ops.map((o) => `${o.op} ${o.count}`).join(', ')}`);
  lines.push('  heads:');
  if (!r.heads.length) {
    lines.push(r.encoderOutputs.length
      ? `    (none: an encoder without task heads; ${r.encoderOutputs.join(', ')} ${r.encoderOutputs.length === 1 ? 'is' : 'are'} the encoder's own output${r.encoderOutputs.length === 1 ? '' : 's'}; add heads with \`grl-onnx heads add\`)`
      : '    (none: no output has a branch of its own)');
  }
  for (const h of r.heads) {
    const grl = h.grl ? `; GRL '${h.grl.node}' λ=${f32(h.grl.lambda)}${h.grl.at !== h.spliceTensor ? ` at '${h.grl.at}'` : ''}` : '';
    lines.push(`    ${h.name} -> ${h.output}: ${h.exclusiveNodes} exclusive node${h.exclusiveNodes === 1 ? '' : 's'}, leaves the trunk at '${h.spliceTensor || '?'}'${grl}`);
    if (h.labels) lines.push(`      labels (${h.labels.length}): ${h.labels.length > 12 ? `${h.labels.slice(0, 12).join(', ')}, ...` : h.labels.join(', ')}`);
  }
  if (r.hiddenStates.length) {
    const w = Math.max(...r.hiddenStates.map((h) => h.layer.length));
    lines.push('  hidden states a head can read (heads add --from):');
    for (const h of r.hiddenStates) lines.push(`    ${h.layer.padEnd(w)}  ${h.tensor}  [${h.shape.map((x) => (x === null ? '?' : String(x))).join(', ')}]`);
  }
  lines.push(`  GRLs: ${r.grls.length ? r.grls.map((g) => `${g.node} (head ${g.head || '?'}, λ=${f32(g.lambda)})`).join(', ') : 'none'}`);
  for (const e of r.erasers) {
    const f = e.fit;
    const on = [f.label !== undefined ? `label ${f.label}` : '', f.data ? `fit on ${f.data}` : '', f.rows !== undefined ? `${f.rows} rows` : ''].filter(Boolean).join(', ');
    lines.push(`  eraser: ${e.method} at '${e.tensor}', rank ${e.rank} of ${e.dim}${on ? ` (${on})` : ''}; nodes ${e.nodes.join(', ')}`);
  }
  if (r.missingGradientRules.length) {
    lines.push(`  no gradient rule yet (training would fail): ${r.missingGradientRules.map((m) => `${m.domain ? `${m.domain}::` : ''}${m.op} (${m.nodes.length} node${m.nodes.length === 1 ? '' : 's'}, e.g. ${m.nodes[0]})`).join(', ')}`);
  } else {
    lines.push('  gradient rules: every op on a path from a parameter to an output has one');
  }
  lines.push(`  ranks: ${rankCounts(r)}`);
  if (r.ranks.blocking.length) {
    const b = r.ranks.blocking;
    lines.push(`  rank unknown on a gradient path (training would fail): ${b.map((x) => `${x.domain ? `${x.domain}::` : ''}${x.op} node '${x.node}' (${x.tensors} tensor${x.tensors === 1 ? '' : 's'}, e.g. '${x.example}')`).join(', ')}`);
    if (r.ranks.fallbackError) lines.push(`    the onnxruntime run that would have read them failed: ${r.ranks.fallbackError}`);
  }
  if (r.warnings.length) {
    lines.push('  warnings:');
    for (const w of r.warnings) lines.push(`    - ${w}`);
  }
  if (r.problems.length) {
    lines.push(`  problems (${r.problems.length}; patch, artifacts and train refuse this model):`);
    for (const w of r.problems) lines.push(`    - ${w}`);
  }
  return `${lines.join('\n')}\n`;
}
