// Large buffers given back to the allocator now instead of at V8's next full collection: depmod lets
// go of decode buffers of tens of megabytes (the largest modules come first), and while they wait for
// that collection they count in the peak memory. Transferring an ArrayBuffer into a message that is
// never received detaches it from every view and frees its memory when the channel closes (a moment
// later, without a collection: when the channel's 'close' event comes). The views must no longer be
// needed.
import type { MessageChannel as MessageChannelType } from 'node:worker_threads';

let Channel: typeof MessageChannelType | undefined;

/** Frees `buffers` (detaching their views); the promise resolves once the memory is given back. */
export function releaseBuffers(buffers: ArrayBuffer[]): Promise<void> {
  if (buffers.length === 0) return Promise.resolve();
  Channel ??= (require('node:worker_threads') as typeof import('node:worker_threads')).MessageChannel;
  const { port1, port2 } = new Channel();
  port1.postMessage(null, buffers);
  const freed = new Promise<void>((resolve) => port2.once('close', () => resolve()));
  port1.close();
  port2.close();
  return freed;
}
