// How every --json document is written: one JSON value, two-space indented, one trailing newline, on
// standard output. Each document names its schema (docs/json-schema/<kind>.json) and the schema version.
import { isUtf8 } from 'node:buffer';
import type { ToolIo } from '../io';

export interface JsonDocument {
  kind: string;
  version: number;
  [key: string]: unknown;
}

/**
 * The document's strings are binary strings (one char per byte, as the tools hold every text read from
 * files): written as those bytes, they are UTF-8 wherever the module's or the system's text was. A byte
 * that is not (a latin1 author name in a .modinfo) becomes U+FFFD, so that the document is always UTF-8
 * (RFC 8259) and a reader's strict decoder (Python's json.load) never fails on it; the text output keeps
 * the byte.
 */
export function printJson(io: ToolIo, doc: JsonDocument): void {
  const bytes = Buffer.from(JSON.stringify(doc, null, 2) + '\n', 'latin1');
  io.stdout(isUtf8(bytes) ? bytes : Buffer.from(new TextDecoder().decode(bytes), 'utf8'));
  io.flush();
}
