// A fresh temp folder per test (removed after it), and a helper to write a file into it.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

export function useTempDir(prefix: string): { dir: () => string; write: (name: string, text: string) => string } {
  let dir = '';
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));
  return {
    dir: () => dir,
    write: (name, text) => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, text);
      return f;
    },
  };
}
