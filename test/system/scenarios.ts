// The system suite's scenarios, run in the booted Debian system (guest.js) once with kmod 34.2's
// programs and once with kmodts' under the same names. Each step is a shell command; after each,
// the guest records its stdout, stderr, status and /proc/modules. The boot itself (initramfs, udev
// coldplug, systemd's modprobe@ units) is the first scenario.

export interface SystemStep {
  run: string;
  /** the output lists modules in load order, which depends on timing: compared as sorted lines */
  unordered?: boolean;
  /** what the step must do with either tool (so that the two agreeing is not agreeing on nothing) */
  status?: number | string;
  loaded?: string[];
  unloaded?: string[];
}

export interface SystemScenario {
  name: string;
  title: string;
  steps: SystemStep[];
}

const lists: SystemStep[] = [{ run: 'lsmod', unordered: true }, { run: 'kmod list', unordered: true }];

/** the checksums of the module directory's index files, those that kmod's depmod reads or writes */
const INDEX_SUMS = "ls modules.* | grep -vx 'modules.kmodts-cache.bin' | xargs sha256sum";

export const scenarios: SystemScenario[] = [
  {
    name: 'boot',
    title: 'the boot: initramfs, udev coldplug (virtio-rng by its modalias), systemd',
    steps: [
      { run: 'systemctl list-units --failed --plain --no-legend --no-pager' },
      // the device-alias scenario: coldplug ran /usr/sbin/modprobe -b <modalias> (60-kmodts-modalias.rules)
      { run: 'for d in /sys/bus/virtio/devices/*; do echo "$(cat $d/modalias) $(basename "$(readlink $d/driver)")"; done', loaded: ['virtio_rng', 'virtio_blk'] },
    ],
  },
  {
    name: 'systemd',
    title: 'systemd: kmod-static-nodes.service and modprobe@.service',
    steps: [
      { run: 'systemctl show -p Result -p ExecMainStatus kmod-static-nodes.service' },
      { run: 'cat /run/tmpfiles.d/static-nodes.conf' },
      { run: 'systemctl show -p Result -p ExecMainStatus modprobe@loop.service modprobe@configfs.service modprobe@fuse.service modprobe@dm_mod.service' },
      { run: 'systemctl start modprobe@tun.service && systemctl show -p Result -p ExecMainStatus modprobe@tun.service', loaded: ['tun'] },
    ],
  },
  {
    name: 'kernel-requests',
    title: "the kernel's own requests (request_module runs /sbin/modprobe -q -- <name>)",
    steps: [
      { run: 'mkfs.fat -C /tmp/fat.img 4096 >/dev/null && mkdir -p /mnt/fat && mount -o loop /tmp/fat.img /mnt/fat && grep " /mnt/fat " /proc/mounts | cut -d" " -f3', status: 0, loaded: ['loop', 'vfat', 'fat'] },
      { run: 'ip link add kdummy0 type dummy && ip -o link show kdummy0 | cut -d" " -f2', status: 0, loaded: ['dummy'] },
      { run: 'ip link add kvxlan0 type vxlan id 42 dstport 4789 && ip -o link show kvxlan0 | cut -d" " -f2', status: 0, loaded: ['vxlan', 'udp_tunnel'] },
      { run: 'ip link add kbr0 type bridge && ip -o link show kbr0 | cut -d" " -f2', status: 0, loaded: ['bridge', 'stp', 'llc'] },
      // socket(PF_KEY, SOCK_RAW, PF_KEY_V2): request_module("net-pf-15")
      { run: `perl -e 'socket(my $s, 15, 3, 2) or die "socket: $!\\n"; print "PF_KEY socket\\n"'`, status: 0, loaded: ['af_key'] },
    ],
  },
  {
    name: 'dkms',
    title: 'an out-of-tree module installed the way DKMS installs one (updates/dkms, depmod -a)',
    steps: [
      { run: 'mkdir -p /lib/modules/$KVER/updates/dkms && cp /lib/modules/$KVER/kernel/drivers/net/veth.ko.xz /lib/modules/$KVER/updates/dkms/' },
      { run: 'depmod -a', status: 0 },
      // kmod's files; kmodts' scan cache beside them (modules.kmodts-cache.bin) is its own (docs/compat.md)
      { run: `cd /lib/modules/$KVER && ${INDEX_SUMS}` },
      { run: 'modinfo -n veth; modprobe --show-depends veth' },
      { run: 'modprobe veth', status: 0, loaded: ['veth'] },
      { run: 'modprobe -r veth', status: 0, unloaded: ['veth'] },
      { run: `rm -r /lib/modules/$KVER/updates && depmod -a && cd /lib/modules/$KVER && ${INDEX_SUMS}` },
    ],
  },
  {
    name: 'remove-stack',
    title: 'modprobe -r of stacks with holders, lsmod and kmod list after each step',
    steps: [
      ...lists,
      { run: 'modprobe -r llc', status: 1, loaded: ['llc'] },
      ...lists,
      // llc stays: both tools agree (compared below), the expectation only names what must go
      { run: 'ip link del kbr0 && modprobe -r bridge', status: 0, unloaded: ['bridge', 'stp'] },
      ...lists,
      { run: 'ip link del kvxlan0 && modprobe -r vxlan', status: 0, unloaded: ['vxlan', 'udp_tunnel'] },
      ...lists,
      { run: 'ip link del kdummy0 && modprobe -r dummy af_key', status: 0, unloaded: ['dummy', 'af_key'] },
      ...lists,
      { run: 'umount /mnt/fat && modprobe -r vfat', status: 0, unloaded: ['vfat', 'fat'] },
      ...lists,
    ],
  },
];
