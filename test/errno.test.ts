// strerror(): glibc's texts for every errno it names, since kmod prints whatever the kernel (or a
// module's init function, through finit_module) hands back with %m / strerror().
import { describe, expect, it } from 'vitest';
import { errnoOf, strerror } from '../src/errno';

describe('strerror', () => {
  it("gives glibc 2.41's text for errno values module init functions return", () => {
    // found by running kmod's testsuite scenarios with a failing init: kmod printed
    // "could not insert 'mod_loop_a': Connection timed out", kmodts "Unknown error 110"
    expect(strerror(110)).toBe('Connection timed out');
    expect(strerror(6)).toBe('No such device or address');
    expect(strerror(10)).toBe('No child processes');
    expect(strerror(25)).toBe('Inappropriate ioctl for device');
    expect(strerror(32)).toBe('Broken pipe');
    expect(strerror(52)).toBe('Invalid exchange');
    expect(strerror(71)).toBe('Protocol error');
    expect(strerror(100)).toBe('Network is down');
    expect(strerror(105)).toBe('No buffer space available');
    expect(strerror(121)).toBe('Remote I/O error');
    expect(strerror(122)).toBe('Disk quota exceeded');
    expect(strerror(125)).toBe('Operation canceled');
    expect(strerror(133)).toBe('Memory page has hardware error');
  });

  it('the values glibc does not name, as glibc prints them', () => {
    expect(strerror(41)).toBe('Unknown error 41'); // EWOULDBLOCK is EAGAIN (11); 41 is unused
    expect(strerror(58)).toBe('Unknown error 58'); // EDEADLOCK is EDEADLK (35) on x86_64 and arm64
    expect(strerror(134)).toBe('Unknown error 134');
    expect(strerror(517)).toBe('Unknown error 517'); // the kernel-internal EPROBE_DEFER
  });

  it('unchanged texts of the values it had', () => {
    expect(strerror(0)).toBe('Success');
    expect(strerror(2)).toBe('No such file or directory');
    expect(strerror(129)).toBe('Key was rejected by service');
  });

  it('errnoOf keeps the number of a Node error whose code it has no name for', () => {
    expect(errnoOf(Object.assign(new Error('x'), { code: 'ETIMEDOUT', errno: -110 }))).toBe(110);
  });
});
