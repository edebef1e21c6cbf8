// How every --json document is written: one JSON value, two-space indented, one trailing newline, on
// standard output. Each document names its schema (docs/json-schema/<kind>.json) and the schema version.
import type { ToolIo } from '../io';

export interface JsonDocument {
  kind: string;
  version: number;
  [key: string]: unknown;
}

export function printJson(io: ToolIo, doc: JsonDocument): void {
  io.stdout(JSON.stringify(doc, null, 2) + '\n');
  io.flush();
}
