// `grl-onnx heads add|remove` in-process: the commands of docs/heads.md, label
// files, and each bad input as one line on stderr with a non-zero exit.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { loadModel, serializeModel } from '../../src/onnx/io';
import { readHeadRecords } from '../../src/heads/metadata';
import { readLabelNames } from '../../src/heads/labels';
import { isGrlNode } from '../../src/patch/heads';
import { ENCODER } from './helpers';
import { cli } from '../helpers/cli';


let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'grl-heads-cli-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('grl-onnx heads', () => {
  it('add two token heads with one adversarial, then remove one', async () => {
    const out = path.join(dir, 'tagger.onnx');
    const r = await cli(['heads', 'add', ENCODER, '--head', 'pos:17', '--head', 'ner:9', '--adversarial', 'pos:0.1', '-o', out]);
    expect(r).toEqual({
      code: 0,
      stdout: '',
      stderr: "added pos -> pos_logits: linear → 17, reads 'last_hidden_state'; GRL λ=0.1\n"
        + "added ner -> ner_logits: linear → 9, reads 'last_hidden_state'\n"
        + `wrote ${out}\n`,
    });
    const m = loadModel(out);
    expect(readHeadRecords(m).map((h) => h.output)).toEqual(['pos_logits', 'ner_logits']);
    expect(m.proto.graph?.node?.filter(isGrlNode).map((n) => n.name)).toEqual(['pos/grl']);
    const back = path.join(dir, 'pos-only.onnx');
    const rm = await cli(['heads', 'remove', out, 'ner', '-o', back]);
    expect(rm.stderr).toBe(`removed ner (ner_logits): 2 nodes, 2 initializers (heads.ner.weight, heads.ner.bias)\nwrote ${back}\n`);
    expect(loadModel(back).proto.graph?.output?.map((o) => o.name)).toEqual(['last_hidden_state', 'pooler_output', 'pos_logits']);
  });

  it('sequence heads take --pool and --mlp; --json reports the heads', async () => {
    const out = path.join(dir, 'clf.onnx');
    const r = await cli(['heads', 'add', ENCODER, '--head', 'topic:4:seq', '--pool', 'mean', '--mlp', '16', '--seed', '7', '-o', out, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).heads).toEqual([{ name: 'topic', output: 'topic_logits', kind: 'seq', from: 'last_hidden_state', pool: 'mean', classes: 4, mlp: 16 }]);
  });

  it('--labels NAME=FILE (one per line) and a .labels.json vocabulary; CLASSES may come from them', async () => {
    fs.writeFileSync(path.join(dir, 'pos.txt'), 'NOUN\nVERB\nADJ\n');
    fs.writeFileSync(path.join(dir, 'train.labels.json'), JSON.stringify({ ner: ['O', 'B-PER', 'I-PER'], other: ['x', 'y'] }));
    const out = path.join(dir, 'm.onnx');
    const r = await cli(['heads', 'add', ENCODER, '--head', 'pos', '--head', 'ner:3', '--labels', `pos=${path.join(dir, 'pos.txt')}`, '--labels', path.join(dir, 'train.labels.json'), '-o', out]);
    expect(r.stderr).toContain("added pos -> pos_logits: linear → 3, reads 'last_hidden_state'; 3 label names\n");
    const m = loadModel(out);
    expect(readLabelNames(m, 'pos')).toEqual(['NOUN', 'VERB', 'ADJ']);
    expect(readLabelNames(m, 'ner')).toEqual(['O', 'B-PER', 'I-PER']);
    const text = await cli(['inspect', out]);
    expect(text.stdout).toContain('      labels (3): O, B-PER, I-PER\n');
  });

  it('each bad input is one line and a non-zero exit; nothing is written', async () => {
    const out = path.join(dir, 'x.onnx');
    const bad = async (args: string[], line: string) => {
      const r = await cli(['heads', 'add', ENCODER, ...args, '-o', out]);
      expect([r.code, r.stderr]).toEqual([1, `grl-onnx: ${line}\n`]);
      expect(fs.existsSync(out)).toBe(false);
    };
    await bad(['--head', 'pos:5', '--from', 'hidden'], `${ENCODER}: --from 'hidden': no such tensor in the graph (inspect lists the hidden states)`);
    await bad(['--head', 'pos:5', '--from', 'pooler_output'], `${ENCODER}: --from 'pooler_output' has rank 2 [batch, 32]; expected hidden states [batch, sequence, d]`);
    await bad(['--head', 'pos:5', '--head', 'pos:3'], `${ENCODER}: head 'pos' already exists (output 'pos_logits'); remove it first or pick another name`);
    await bad(['--head', 'pos:1'], `${ENCODER}: head 'pos': classes must be an integer >= 2, got 1`);
    await bad(['--head', 'pos:x'], "--head pos:x: CLASSES must be an integer, got 'x'");
    await bad(['--head', 'pos:5:word'], "--head pos:5:word: level must be 'token' or 'seq', got 'word'");
    await bad(['--head', 'pos'], `${ENCODER}: head 'pos': give the number of classes (NAME:CLASSES)`);
    await bad(['--head', 'pos:5', '--adversarial', 'ner:0.1'], "--adversarial ner:0.1: 'ner' is not one of the heads being added (pos); use `grl-onnx patch` for existing heads");
    await bad(['--head', 'pos:5', '--labels', `pos=${path.join(dir, 'missing.txt')}`], `${path.join(dir, 'missing.txt')}: cannot read label file (ENOENT)`);
    // Never the input.
    const before = fs.readFileSync(ENCODER);
    const r = await cli(['heads', 'add', ENCODER, '--head', 'pos:5', '-o', ENCODER]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(fs.readFileSync(ENCODER).equals(before)).toBe(true);
    const rm = await cli(['heads', 'remove', ENCODER, 'pooler_output', '-o', out]);
    expect(rm.code).toBe(1);
    expect(rm.stderr).toBe(`grl-onnx: ${ENCODER}: output 'pooler_output' is not a head (it is the encoder's own output, has no nodes of its own, or carries no gradient); available heads: (none: the model has no output with a branch of its own)\n`);
  });

  it('heads add then heads remove of every head gives the encoder bytes back', async () => {
    const a = path.join(dir, 'a.onnx');
    const b = path.join(dir, 'b.onnx');
    const c = path.join(dir, 'c.onnx');
    expect((await cli(['heads', 'add', ENCODER, '--head', 'pos:17', '--head', 's:2:seq', '--adversarial', 's', '-o', a])).code).toBe(0);
    expect((await cli(['heads', 'remove', a, 's', '-o', b])).code).toBe(0);
    expect((await cli(['heads', 'remove', b, 'pos', '-o', c])).code).toBe(0);
    expect(serializeModel(loadModel(c)).equals(serializeModel(loadModel(ENCODER)))).toBe(true);
  });
});

describe('label names downstream', () => {
  it('probe names the majority class with the model\'s id2label', async () => {
    const { withLabelNames } = await import('../../src/heads/labels');
    const ROOT = path.join(__dirname, '..', '..');
    const names = (JSON.parse(fs.readFileSync(path.join(ROOT, 'data', 'labels.json'), 'utf8')) as Record<string, string[]>).pos;
    const model = withLabelNames(loadModel(path.join(ROOT, 'models', 'tiny-tagger-init.onnx')), 'pos', names);
    const file = path.join(dir, 'named.onnx');
    fs.writeFileSync(file, serializeModel(model));
    const lines = (f: string, n: number) => fs.readFileSync(path.join(ROOT, 'data', f), 'utf8').split('\n').slice(0, n).join('\n');
    fs.writeFileSync(path.join(dir, 'train.jsonl'), lines('train.jsonl', 60));
    fs.writeFileSync(path.join(dir, 'dev.jsonl'), lines('dev.jsonl', 30));
    const r = await cli(['probe', file, '--data', path.join(dir, 'train.jsonl'), '--label', 'pos', '--epochs', '1', '--threads', '1', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.labelNames).toEqual(names);
    const text = await cli(['probe', file, '--data', path.join(dir, 'train.jsonl'), '--label', 'pos', '--epochs', '1', '--threads', '1']);
    expect(text.stdout).toContain(`(class ${names[j.majority.label]})\n`);
  });
});
