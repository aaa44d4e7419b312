// The package's own version, for `--version` and the provenance block of reports.
import * as fs from 'fs';
import * as path from 'path';

/** The version in package.json (one level above src/ and dist/), or 'unknown' when it cannot be read. */
export function packageVersion(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}
