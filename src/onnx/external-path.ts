// Model I/O: where a tensor's external data may live. An external-data location
// is read from the model, so it is untrusted: it must be a relative path inside
// the model's folder. Absolute paths, `..` anywhere (even `sub/../../x`, which a
// normalising check would let through) and symlinks that resolve outside the folder
// are refused (the holes python onnx closed in CVE-2022-25882, CVE-2024-27318 and
// CVE-2026-27489). No tensor imports here: tensor.ts calls this on every read.
import * as fs from 'fs';
import * as path from 'path';
import { ModelFormatError } from './errors';

/**
 * The absolute path of an external-data `location` relative to `baseDir`, after
 * checking it stays inside `baseDir`. `source` and `tensor` name the model and tensor
 * in the error.
 */
export function externalDataPath(baseDir: string, location: string, tensor: string, source: string): string {
  const bad = (why: string): never => {
    throw new ModelFormatError(source, `tensor '${tensor}' has external data at '${location}', ${why}; external data must be a file inside the model's folder`);
  };
  if (!location) bad('an empty location');
  if (location.includes('\0')) bad('a location with a NUL byte');
  if (path.isAbsolute(location) || path.win32.isAbsolute(location) || /^[a-zA-Z]:/.test(location)) bad('an absolute location');
  if (location.split(/[\\/]+/).includes('..')) bad("a location with a '..' component");
  const dir = path.resolve(baseDir);
  const file = path.resolve(dir, location);
  // Symlinks (of the file or of folders on its way) must not lead out of the folder.
  let realDir: string;
  let realFile: string;
  try {
    realDir = fs.realpathSync(dir);
    realFile = fs.realpathSync(file);
  } catch {
    return file; // missing: the caller reports "not found"
  }
  const rel = path.relative(realDir, realFile);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) bad(`which resolves outside the model's folder (to ${realFile})`);
  return file;
}

/** A data file name chosen by a caller (not by a model) for saving: a plain name in the output's folder. */
export function checkDataFileName(name: string): void {
  if (!name || name === '.' || name === '..' || /[\\/\0]/.test(name) || path.isAbsolute(name)) {
    throw new ModelFormatError(name, 'an external data file name must be a plain file name (it is written next to the model)');
  }
}
