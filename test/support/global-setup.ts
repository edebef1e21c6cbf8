import { missingPrerequisites, prerequisiteError } from './prerequisites';
import { reference } from './reference';

// Before any suite runs: every prerequisite is there, and kmod 34.2 and the Debian kernel tree are
// downloaded (or found in the machine's cache). A failure here fails the run with one line per
// problem: suites that need these must not silently skip.
export default function setup(): void {
  const missing = missingPrerequisites();
  if (missing.length > 0) throw prerequisiteError(missing);
  try {
    reference();
  } catch (err) {
    throw prerequisiteError([
      `missing test prerequisite: a reachable Debian mirror, for kmod 34.2 and the Debian 6.12 kernel (${(err as Error).message.split('\n')[0]})`,
    ]);
  }
}
