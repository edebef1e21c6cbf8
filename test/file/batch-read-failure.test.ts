// The batch reader's internal-error path (src/file/batch-read.ts): where readAndDecode rejects (a bug,
// never a bad file), the reader calls that file's `fail` instead of `done`, and the other files are
// still delivered. readAndDecode is replaced here (without the addon's reader, the reader uses it).
import { describe, expect, it, vi } from 'vitest';

vi.mock('../../src/file/read-decode', async (original) => {
  const actual = await original<typeof import('../../src/file/read-decode')>();
  return {
    ...actual,
    readAndDecode: (file: string) => (file === 'bad' ? Promise.reject(new Error('internal')) : Promise.resolve({ readErrno: 2 })),
  };
});

const { openBatchReader } = await import('../../src/file/batch-read');
const { useNativeDecoder } = await import('../../src/file/native-decode');

describe('openBatchReader, an internal error', () => {
  it('goes to the file\'s fail callback; the other files are delivered', async () => {
    useNativeDecoder(false);
    const reader = openBatchReader(2);
    const seen: string[] = [];
    await new Promise<void>((resolve) => {
      for (const file of ['a', 'bad', 'c']) {
        reader.read(
          file,
          {},
          (r) => {
            seen.push(`${file}: ${JSON.stringify(r)}`);
            if (seen.length === 3) resolve();
          },
          (err) => {
            seen.push(`${file}: failed ${(err as Error).message}`);
            if (seen.length === 3) resolve();
          },
        );
      }
    });
    reader.close();
    useNativeDecoder(true);
    expect(seen.sort()).toEqual(['a: {"readErrno":2}', 'bad: failed internal', 'c: {"readErrno":2}']);
  });
});
