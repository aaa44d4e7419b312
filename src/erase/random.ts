// Concept erasure, the control of amnesic probing (Elazar et al. 2021): remove K
// random orthonormal directions (K = the rank INLP removed), so a drop caused by
// removing *any* K directions can be told apart from one caused by removing the
// concept. Seeded Gaussian directions, orthonormalised by ml-matrix's QR.
import { Matrix, QrDecomposition } from 'ml-matrix';
import { GrlError } from '../onnx/errors';
import { Rng } from '../data/jsonl';
import { gaussian } from '../probe/probe';
import { Eraser, orthogonalEraser } from './eraser';

export function randomEraser(dim: number, rank: number, seed = 0): Eraser {
  // rank = dim is the whole space (the zero map): INLP run to majority can remove every direction,
  // and its random control then has to match it.
  if (!Number.isInteger(rank) || rank < 1 || rank > dim) throw new GrlError(`random erasure: rank must be an integer in [1, ${dim}] for dim ${dim}, got ${rank}`);
  const rng = new Rng((seed * 69069 + 1234567) >>> 0);
  const g = new Matrix(dim, rank);
  for (let i = 0; i < dim; i++) for (let r = 0; r < rank; r++) g.set(i, r, gaussian(rng));
  const q = new QrDecomposition(g).orthogonalMatrix;
  return orthogonalEraser(q.subMatrix(0, dim - 1, 0, rank - 1), dim, 'random');
}
