import { gradCheckBoth, gradCheck } from '../helpers/gradcheck';

describe('Add gradient', () => {
  it('same shapes', async () => {
    await gradCheckBoth({ op: 'Add', inputs: [{ dims: [2, 3] }, { dims: [2, 3] }] });
  });
  it('broadcasts a bias over leading axes', async () => {
    await gradCheckBoth({ op: 'Add', inputs: [{ dims: [2, 3, 4] }, { dims: [4] }] });
  });
  it('broadcasts size-1 axes in both inputs', async () => {
    await gradCheckBoth({ op: 'Add', inputs: [{ dims: [2, 1, 4] }, { dims: [3, 1] }] });
  });
  it('sums a broadcast bias gradient exactly (hand-checked)', async () => {
    const r = await gradCheck({ op: 'Add', inputs: [{ dims: [2, 2], values: [1, 2, 3, 4] }, { dims: [2], values: [0, 0] }] }, 'dynamic');
    const dx = r.grads.get(0)!;
    const db = r.grads.get(1)!;
    expect(db[0]).toBeCloseTo(dx[0] + dx[2], 6);
    expect(db[1]).toBeCloseTo(dx[1] + dx[3], 6);
  });
});
