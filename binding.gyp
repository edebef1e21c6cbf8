{
  "targets": [
    {
      "target_name": "kmodts_native",
      "sources": ["native/kmodts_native.c", "native/module_symbols.c", "native/index_writer.c", "native/file_crc.c", "native/stat_keys.c", "native/hash_order.c", "native/word_ranges.c", "native/import_dictionary.c", "native/import_owners.c", "native/pair_lines.c", "native/dep_lines.c", "native/symbol_table.c", "native/decompress.c", "native/read_file.c", "native/decode_gzip.c", "native/decode_napi.c", "native/read_batch.c", "native/modinfo_parts.c", "native/tree_walk.c", "native/walk_record.c", "native/module_scan.c", "native/alias_pieces.c", "native/alias_files.c", "native/elf_image.c", "native/buffer_release.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "libraries": ["-ldl", "-lpthread"]
    }
  ]
}
