# cache/: persistence, and the rnnjit-cache tool run as a user would.
rnnjit_add_catch_test(NAME cache_test SOURCES cache_test.cpp LIBS rnnjit_cache LABELS cache)
target_link_libraries(cache_test PRIVATE rnnjit_log)
if(RNNJIT_BUILD_TOOLS)
  rnnjit_add_catch_test(NAME cli_cache_test SOURCES cli_cache_test.cpp LIBS rnnjit LABELS cli)
  target_link_libraries(cli_cache_test PRIVATE rnnjit_log)
  target_compile_definitions(cli_cache_test PRIVATE RNNJIT_CACHE_TOOL="$<TARGET_FILE:rnnjit-cache>"
                                                    RNNJIT_TUNE_TOOL="$<TARGET_FILE:rnnjit-tune>")
  add_dependencies(cli_cache_test rnnjit-cache rnnjit-tune)
endif()
