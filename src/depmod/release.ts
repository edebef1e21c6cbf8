// Large buffers given back to the allocator now instead of at V8's next full collection: depmod lets
// go of decode buffers of tens of megabytes (the largest modules come first), and while they wait for
// that collection they count in the peak memory. The addon detaches them (native/buffer_release.c):
// their views become empty and the memory is freed at once. Without it, transferring an ArrayBuffer
// into a message that is never received does the same (a moment later, when the channel's 'close'
// event comes), after loading node:worker_threads (~2 ms). The views must no longer be needed.
import type { MessageChannel as MessageChannelType } from 'node:worker_threads';
import { nativeFunction } from '../native-addon';

let Channel: typeof MessageChannelType | undefined;
let detach: ((buffers: ArrayBuffer[]) => number) | null | undefined;

/** Frees `buffers` (detaching their views); the promise resolves once the memory is given back. */
export function releaseBuffers(buffers: ArrayBuffer[]): Promise<void> {
  if (buffers.length === 0) return Promise.resolve();
  detach ??= nativeFunction('detachBuffers');
  // (an external buffer the addon cannot detach is left to the collector, as a transfer leaves it)
  if (detach !== null) {
    detach(buffers);
    return Promise.resolve();
  }
  Channel ??= (require('node:worker_threads') as typeof import('node:worker_threads')).MessageChannel;
  const { port1, port2 } = new Channel();
  port1.postMessage(null, buffers);
  const freed = new Promise<void>((resolve) => port2.once('close', () => resolve()));
  port1.close();
  port2.close();
  return freed;
}

/** Whether buffers are released by the addon from now on (false: by a transfer; tests try both). Returns whether they are. */
export function useNativeRelease(on: boolean): boolean {
  detach = on ? nativeFunction('detachBuffers') : null;
  return detach !== null;
}
