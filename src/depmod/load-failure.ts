// What libkmod logs while kmod's depmod loads a module file it cannot use. depmod_load_modules asks
// libkmod three times for the same module: kmod_module_get_symbols (whose failure depmod reports as
// "failed to load symbols from …"), then kmod_module_get_info and kmod_module_get_dependency_symbols.
// A file whose image never loaded is loaded again each time (kmod_file_get_elf), and a decompressor's
// failure is logged each time:
// - zstd maps the whole file each time: the same message three times;
// - xz reads on from where the previous load left the descriptor (xz_uncompress read()s BUFSIZ bytes
//   at a time and never seeks back): a truncated file is "Unexpected end of input" the second and the
//   third time, a file damaged in its middle is decoded again from the end of the last block read.
// Files libkmod cannot open, shorter than its 6-byte magic, or uncompressed ones whose ELF is bad, are
// not logged about. The module scan does not keep these messages (the pool threads and the scan cache
// only know the errno): they are made again here, for the few modules that failed, from the file.
import { detectCompression, decompress, DecompressError, xzMessage } from '../file/decompress';
import { liblzmaAttempt } from '../file/liblzma';
import { readReusable } from './module-image';

const LZMA_STREAM_END = 1;

/**
 * The messages (without "\n") libkmod logs at each of depmod's three loads of `path`, a module whose
 * first load failed: `first` comes before depmod's "failed to load symbols" line, `again` after it.
 */
export function loadFailureMessages(path: string): { first: string[]; again: string[] } {
  const none = { first: [], again: [] };
  let data: Buffer;
  try {
    // (the scan's read, so that a file it refused is refused here too: /dev/zero is not read for ever)
    data = readReusable(path);
  } catch {
    return none;
  }
  if (data.length < 6) return none;
  switch (detectCompression(data)) {
    case 'xz':
      return xzLoads(data);
    case 'zstd': {
      const said = zstdMessage(data, path);
      return said === '' ? none : { first: [said], again: [said, said] };
    }
    default:
      return none;
  }
}

/** three loads, each from where the last one's reads ended; one that succeeds ends the retries */
function xzLoads(data: Buffer): { first: string[]; again: string[] } {
  const said: string[] = [];
  let at = 0;
  for (let load = 0; load < 3; load++) {
    const { ret, end } = liblzmaAttempt(data, at);
    if (ret === LZMA_STREAM_END) break;
    said.push(xzMessage(ret));
    at = end;
  }
  return { first: said.slice(0, 1), again: said.slice(1) };
}

/** libkmod's message for a zstd file that does not load ('' when it logs none, or the file loads) */
function zstdMessage(data: Buffer, path: string): string {
  try {
    decompress(data, path);
    return '';
  } catch (err) {
    if (err instanceof DecompressError) return err.detail;
    throw err;
  }
}
