{
  "targets": [
    {
      "target_name": "kmodts_native",
      "sources": ["native/kmodts_native.c", "native/module_symbols.c", "native/index_writer.c", "native/stat_keys.c"],
      "cflags": ["-Wall", "-Wextra", "-O2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
