import { reference } from './reference';

// Download (or find cached) kmod 34.2 and the Debian kernel tree once, before any suite runs.
// A failure here fails the run: suites that need the reference must not silently skip.
export default function setup(): void {
  reference();
}
