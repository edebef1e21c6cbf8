// The module index (.bin) format shared by the reader (indexes/binary.ts) and depmod's writer:
// a Patricia trie of NUL-terminated strings with big-endian u32 fields (KMOD.md §6).
//   header: u32 magic, u32 version, u32 root node reference
//   node reference: flags in bits 31..28, file offset in bits 27..0
//   node: [prefix "\0"] [u8 first, u8 last, u32 child[last-first+1]] [u32 count, {u32 priority, value "\0"}*]
// Each part is present only when the reference pointing at the node carries its flag.

export const INDEX_MAGIC = 0xb007f457;
export const INDEX_VERSION_MAJOR = 0x0002;
export const INDEX_VERSION_MINOR = 0x0001;
export const INDEX_VERSION = ((INDEX_VERSION_MAJOR << 16) | INDEX_VERSION_MINOR) >>> 0;
/** bytes before the first node: magic, version, root reference */
export const INDEX_HEADER_SIZE = 12;

/** node has a prefix string */
export const INDEX_NODE_PREFIX = 0x80000000;
/** node has values */
export const INDEX_NODE_VALUES = 0x40000000;
/** node has children */
export const INDEX_NODE_CHILDS = 0x20000000;
/** all flag bits of a node reference */
export const INDEX_NODE_FLAGS = 0xf0000000;
/** the offset bits of a node reference */
export const INDEX_NODE_MASK = 0x0fffffff;
/** children are indexed by 7-bit characters only */
export const INDEX_CHILDMAX = 128;

/** The index files kmod reads, in kmod_load_resources order, and whether -c dumps prefix "alias ". */
export const INDEX_FILES = {
  dep: { file: 'modules.dep', aliasPrefix: false },
  alias: { file: 'modules.alias', aliasPrefix: true },
  symbols: { file: 'modules.symbols', aliasPrefix: true },
  builtinAlias: { file: 'modules.builtin.alias', aliasPrefix: true },
  builtin: { file: 'modules.builtin', aliasPrefix: false },
} as const;

export type IndexName = keyof typeof INDEX_FILES;
/** kmod_load_resources order */
export const INDEX_LOAD_ORDER: IndexName[] = ['dep', 'alias', 'symbols', 'builtinAlias', 'builtin'];
