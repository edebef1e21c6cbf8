// The first phase of load_module(): the signature (kernel/module/signing.c), the ELF image's validity
// (elf_validity_cache_copy) and the early checks on its identity (early_mod_check), all before anything is
// allocated. Each function is one step of Linux 6.12's kernel/module/main.c, with its errno and log lines.
import { ElfImage, latin1, SHF_ALLOC, SHT_NOBITS, SHT_NULL, SHT_SYMTAB } from './elf-image';
import { verifyModuleSignature } from './keyring';
import { fail, getModinfo, findSec, noexec, type LoadContext, type LoadInfo, type Section } from './load-info';
import { checkVersion } from './load-symbols';
import { tryToForceLoad } from './taint';
import { MODULE_INIT_IGNORE_MODVERSIONS, MODULE_INIT_IGNORE_VERMAGIC } from '../../loading/backend';
import { EBADMSG, EBUSY, EEXIST, EKEYREJECTED, ENODATA, ENOEXEC, ENOKEY, ENOPKG, EPERM } from '../../errno';
import type { X509Certificate } from 'node:crypto';

const SIG_MAGIC = '~Module signature appended~\n';
const MODULE_NAME_LEN = 56;
/** offset of mod->name in struct module */
const MODULE_NAME_OFFSET = 0x18;

/**
 * module_sig_check() (kernel/module/signing.c): strips a well-formed signature from info.len and sets
 * info.sigOk; refuses an unsigned or unverifiable module when signatures are enforced or under lockdown.
 * Without CONFIG_MODULE_SIG there is no check at all: a signature is just trailing bytes.
 */
export function moduleSigCheck(ctx: LoadContext, info: LoadInfo): void {
  const sw = ctx.spec.switches;
  if (!sw.moduleSig) return;
  const { image } = info;
  let err = ENODATA;
  const mangled = (info.flags & (MODULE_INIT_IGNORE_MODVERSIONS | MODULE_INIT_IGNORE_VERMAGIC)) !== 0;
  if (!mangled && info.len > SIG_MAGIC.length && latin1(image, info.len - SIG_MAGIC.length, info.len) === SIG_MAGIC) {
    info.len -= SIG_MAGIC.length;
    err = modVerifySig(image, info.len, ctx.log, ctx.keys, ctx.keyCacheDir);
    // mod_verify_sig() drops the signature from the length once the trailer is well formed
    if (err === 0 || err === ENOKEY || err === EKEYREJECTED) {
      const sigLen = new DataView(image.buffer, image.byteOffset + info.len - 4, 4).getUint32(0, false);
      info.len -= sigLen + 12;
      info.sigOk = err === 0;
    }
  }
  if (info.sigOk) return;
  const reason = err === ENODATA ? 'unsigned module' : err === ENOPKG ? 'module with unsupported crypto' : err === ENOKEY ? 'module with unavailable key' : undefined;
  if (reason === undefined) fail(err);
  if (sw.sigEnforce) {
    ctx.log(5, `Loading of ${reason} is rejected`);
    fail(EKEYREJECTED);
  }
  if (sw.lockdown) {
    ctx.log(5, `Lockdown: ${ctx.comm}: unsigned module loading is restricted; see man kernel_lockdown.7`);
    fail(EPERM);
  }
}

/**
 * mod_verify_sig() (kernel/module/signing.c): the trailer must be well formed (as the kernel checks it)
 * and hold a DER PKCS#7 message. Without a keyring such a signature is taken as made by a trusted key;
 * with one, it is verified against it. Returns 0 or a positive errno.
 */
function modVerifySig(image: Uint8Array, modlen: number, log: LoadContext['log'], keys: X509Certificate[] | undefined, keysCacheDir?: string): number {
  if (modlen <= 12) return EBADMSG;
  const ms = image.subarray(modlen - 12, modlen);
  const sigLen = ((ms[8] << 24) | (ms[9] << 16) | (ms[10] << 8) | ms[11]) >>> 0;
  if (sigLen >= modlen - 12) return EBADMSG;
  if (ms[2] !== 2) {
    log(3, 'module: not signed with expected PKCS#7 message');
    return ENOPKG;
  }
  if (ms[0] || ms[1] || ms[3] || ms[4] || ms[5] || ms[6] || ms[7]) {
    log(3, 'module: PKCS#7 signature info has unexpected non-zero params');
    return EBADMSG;
  }
  const sigStart = modlen - 12 - sigLen;
  // pkcs7_parse_message() refuses anything that is not a DER SEQUENCE
  if (sigLen < 2 || image[sigStart] !== 0x30) return EBADMSG;
  if (!keys) return 0;
  return -verifyModuleSignature(image.subarray(0, modlen + SIG_MAGIC.length), sigStart, keys, keysCacheDir);
}

/**
 * elf_validity_cache_copy() (6.12): the ELF header and section headers are sane, and the indexes of the
 * symbol table, this_module, .modinfo, __versions and .data..percpu are cached in info.index; info.name
 * and mod->name are set.
 */
export function elfValidityCacheCopy(ctx: LoadContext, info: LoadInfo): void {
  const { image, len } = info;
  const img = (info.img = new ElfImage(image.subarray(0, len)));
  if (len < 64) noexec(ctx, `Invalid ELF header len ${len}`);
  if (!(image[0] === 0x7f && image[1] === 0x45 && image[2] === 0x4c && image[3] === 0x46)) noexec(ctx, 'Invalid ELF header magic: != \\x7fELF');
  const eType = img.u16(16);
  if (eType !== 1) noexec(ctx, `Invalid ELF header type: ${eType} != 1`);
  const machine = img.u16(18);
  if (machine !== (ctx.spec.arch === 'arm64' ? 183 : 62)) noexec(ctx, `Invalid architecture in ELF header: ${machine}`);
  if (img.u16(58) !== 64) noexec(ctx, 'Invalid ELF section header size');
  const shoff = img.u64(40);
  const shnum = img.u16(60);
  if (shoff >= len || shnum * 64 > len - shoff) noexec(ctx, 'Invalid ELF section header overflow');
  const shstrndx = img.u16(62);
  if (shstrndx === 0 || shstrndx >= shnum) noexec(ctx, `Invalid ELF section name index: ${shstrndx} || e_shstrndx (${shstrndx}) >= e_shnum (${shnum})`);
  const secs: Section[] = (info.secs = []);
  for (let i = 0; i < shnum; i++) secs.push({ ...img.shdr(shoff, i), nameStr: '', final: 0, memType: -1, memOff: 0 });
  const strhdr = secs[shstrndx];
  if (strhdr.offset + strhdr.size > len || strhdr.offset + strhdr.size < strhdr.offset) noexec(ctx, `Invalid ELF section hdr(type ${strhdr.type})`);
  if (strhdr.size === 0) noexec(ctx, 'empty section name table');
  if (image[strhdr.offset + strhdr.size - 1] !== 0) noexec(ctx, "ELF Spec violation: section name table isn't null terminated");
  if (secs[0].type !== SHT_NULL || secs[0].size !== 0 || secs[0].addr !== 0) noexec(ctx, `ELF Spec violation: section 0 type(${secs[0].type})!=SH_NULL or non-zero len or addr`);
  const strEnd = strhdr.offset + strhdr.size;
  for (const s of secs) s.nameStr = s.name < strhdr.size ? img.cstr(strhdr.offset + s.name, strEnd) : '';
  let numSym = 0;
  let numMod = 0;
  let numInfo = 0;
  for (let i = 1; i < shnum; i++) {
    const s = secs[i];
    if (s.type === SHT_NULL || s.type === SHT_NOBITS) continue;
    if (s.type === SHT_SYMTAB) {
      if (s.link === 0 || s.link >= shnum) noexec(ctx, `Invalid ELF sh_link!=SHN_UNDEF(${s.link}) or (sh_link(${s.link}) >= hdr->e_shnum(${shnum})`);
      numSym++;
      info.index.sym = i;
    }
    if (s.offset + s.size > len) noexec(ctx, `Invalid ELF section in module (section ${i} type ${s.type})`);
    if (s.nameStr === '.gnu.linkonce.this_module') {
      numMod++;
      info.index.mod = i;
    } else if (s.nameStr === '.modinfo') {
      numInfo++;
      info.index.info = i;
    }
    if (s.flags & SHF_ALLOC && s.name >= strhdr.size) noexec(ctx, `Invalid ELF section name in module (section ${i} type ${s.type})`);
  }
  if (numInfo > 1) noexec(ctx, 'Only one .modinfo section must exist.');
  if (numInfo === 1) {
    const s = secs[info.index.info];
    for (const e of latin1(image, s.offset, s.offset + s.size).split('\0')) if (e !== '') info.modinfo.push(e);
  }
  const infoName = getModinfo(info, 'name');
  const nameForMsg = infoName ?? '(missing .modinfo section or name field)';
  if (numSym !== 1) noexec(ctx, `${nameForMsg}: module has no symbols (stripped?)`, 4);
  info.index.str = secs[info.index.sym].link;
  if (numMod !== 1) noexec(ctx, `module ${nameForMsg}: Only one .gnu.linkonce.this_module section must exist.`);
  const modSec = secs[info.index.mod];
  if (!(modSec.flags & SHF_ALLOC)) noexec(ctx, `module ${nameForMsg}: .gnu.linkonce.this_module must occupy memory during process execution`);
  const sizeMsg = `module ${nameForMsg}: .gnu.linkonce.this_module section size must match the kernel's built struct module size at run time`;
  if (ctx.spec.moduleStructSize !== undefined && modSec.size !== ctx.spec.moduleStructSize) noexec(ctx, sizeMsg);
  if (modSec.size < MODULE_NAME_OFFSET + MODULE_NAME_LEN) noexec(ctx, sizeMsg);
  info.mod.name = img.cstr(modSec.offset + MODULE_NAME_OFFSET, modSec.offset + MODULE_NAME_OFFSET + MODULE_NAME_LEN);
  info.name = infoName ?? info.mod.name;
  info.index.vers = info.flags & MODULE_INIT_IGNORE_MODVERSIONS ? 0 : findSec(info, '__versions');
  info.index.pcpu = findSec(info, '.data..percpu');
}

/**
 * early_mod_check() (6.12): blacklisted(), rewrite_section_headers(), check_modstruct_version(),
 * check_modinfo() and module_patient_check_exists(), in that order, before any allocation.
 */
export function earlyModCheck(ctx: LoadContext, info: LoadInfo): void {
  if (ctx.spec.moduleBlacklist.includes(info.name)) {
    ctx.log(3, `Module ${info.name} is blacklisted`);
    fail(EPERM);
  }
  rewriteSectionHeaders(info);
  checkModstructVersion(ctx, info);
  checkModinfo(ctx, info);
  modulePatientCheckExists(ctx, info);
}

/**
 * rewrite_section_headers(): __versions and .modinfo are not loaded. The __versions entries are cached
 * here for check_version() (the kernel reads them in place).
 */
function rewriteSectionHeaders(info: LoadInfo): void {
  const { secs, index, img } = info;
  if (index.vers) secs[index.vers].flags &= ~SHF_ALLOC;
  if (index.info) secs[index.info].flags &= ~SHF_ALLOC;
  if (!index.vers) return;
  const s = secs[index.vers];
  for (let o = s.offset; o + 64 <= s.offset + s.size; o += 64) {
    const name = img.cstr(o + 8, o + 64);
    if (!info.versions.has(name)) info.versions.set(name, img.view.getUint32(o + 4, true) === 0 ? img.u32(o) : -1);
  }
}

/** check_modstruct_version(): the module must agree with the kernel about module_layout's CRC. */
function checkModstructVersion(ctx: LoadContext, info: LoadInfo): void {
  const layoutSym = ctx.ksyms.plain.get('module_layout') ?? ctx.ksyms.gpl.get('module_layout');
  if (!checkVersion(ctx, info, 'module_layout', layoutSym?.crc)) fail(ENOEXEC);
}

/** check_modinfo(): vermagic (or a forced load without it) and livepatch support. */
function checkModinfo(ctx: LoadContext, info: LoadInfo): void {
  const { spec } = ctx;
  const modmagic = info.flags & MODULE_INIT_IGNORE_VERMAGIC ? undefined : getModinfo(info, 'vermagic');
  if (modmagic === undefined) {
    if (!tryToForceLoad(ctx, info, 'bad vermagic')) fail(ENOEXEC);
  } else if (!sameMagic(modmagic, spec.vermagic, info.index.vers !== 0 && spec.switches.modversions)) {
    ctx.log(3, `${info.name}: version magic '${modmagic}' should be '${spec.vermagic}'`);
    fail(ENOEXEC);
  }
  // check_modinfo_livepatch()
  if (getModinfo(info, 'livepatch') !== undefined) {
    if (!spec.switches.livepatch) {
      ctx.log(3, `${info.mod.name}: module is marked as livepatch module, but livepatch support is disabled`);
      fail(ENOEXEC);
    }
    info.mod.klp = true;
  }
}

/** same_magic(): with modversions in use, the release (up to the first space) is not compared. */
function sameMagic(a: string, b: string, hasCrcs: boolean): boolean {
  if (hasCrcs) {
    const ia = a.indexOf(' ');
    const ib = b.indexOf(' ');
    a = ia >= 0 ? a.slice(ia) : '';
    b = ib >= 0 ? b.slice(ib) : '';
  }
  return a === b;
}

/**
 * module_patient_check_exists(): a module of the same struct-module name is EEXIST when live, else EBUSY
 * (the simulator has no concurrent load to wait for).
 */
export function modulePatientCheckExists(ctx: LoadContext, info: LoadInfo): void {
  const old = ctx.state.byName.get(info.mod.name);
  if (old) fail(old.state === 'live' ? EEXIST : EBUSY);
}
