/* depmod's symbol extraction (module_symbols.c): for module_scan.c, and registered on the addon's exports */
#ifndef KMODTS_MODULE_SYMBOLS_H
#define KMODTS_MODULE_SYMBOLS_H
#include <stddef.h>
#include <stdint.h>
#include <node_api.h>

/* the layout the caller passes in in[0..]: section offsets and sizes (0 for an absent one), then the ELF's traits */
enum {
	IN_STRTAB, IN_STRTAB_SIZE, IN_SYMTAB, IN_SYMTAB_SIZE, IN_VERSIONS, IN_VERSIONS_SIZE,
	IN_KSYMTAB_STRINGS, IN_KSYMTAB_STRINGS_SIZE, IN_IS64, IN_LE, IN_SPARC, IN_SHOFF,
	IN_SHENTSIZE, IN_SHNUM, IN_SHSTRTAB_SIZE, IN_COUNT
};

/* what symbols_scan found, in the calling thread's arrays (valid until its next call) */
struct symbols_found {
	/* exports: [start, end) pairs of their names in the image, and their CRCs */
	const uint32_t *ranges;
	const double *crcs;
	size_t n_exports;
	/* imports: names joined by NULs, and per import its symbolKey, length, CRC and weak flag */
	const uint8_t *bytes;
	size_t n_bytes;
	const int32_t *keys;
	const uint32_t *lengths;
	const double *icrcs;
	const uint8_t *weak;
	size_t n_imports;
	/* errno of kmod_elf_get_symbols (ENODATA, EINVAL), 0 when it succeeds */
	int err;
};

/* module-scan.ts symbolsOf on image d (n bytes): 0 (*found set), -1 an offset outside the image, -2 out of memory */
int symbols_scan(const uint8_t *d, size_t n, const double *in, struct symbols_found *found);

napi_status module_symbols_register(napi_env env, napi_value exports);
#endif
