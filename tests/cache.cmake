# cache/: persistence, and the rnnjit-cache tool run as a user would.
# Both tests look at cache files with raw SQLite calls and use support/ (rnnjit_log).
rnnjit_add_catch_test(NAME cache_test SOURCES cache_test.cpp LIBS rnnjit_cache rnnjit_log LABELS cache)
target_include_directories(cache_test PRIVATE ${RNNJIT_SQLITE_INCLUDE})

if(RNNJIT_BUILD_TOOLS)
  # rnnjit (the engine) for version() and template_hash(), to make current and stale rows.
  rnnjit_add_catch_test(NAME cli_cache_test SOURCES cli_cache_test.cpp LIBS rnnjit rnnjit_log LABELS cli)
  target_include_directories(cli_cache_test PRIVATE ${RNNJIT_SQLITE_INCLUDE})
  target_compile_definitions(cli_cache_test PRIVATE RNNJIT_CACHE_TOOL="$<TARGET_FILE:rnnjit-cache>"
                                                    RNNJIT_TUNE_TOOL="$<TARGET_FILE:rnnjit-tune>")
  add_dependencies(cli_cache_test rnnjit-cache rnnjit-tune)
endif()
