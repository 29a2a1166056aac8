# cache/: persistence, and the rnnjit-cache tool run as a user would.
# Both tests look at cache files with raw SQLite calls and use support/ (rnnjit_support).
rnnjit_add_catch_test(NAME cache_test SOURCES cache_test.cpp LIBS rnnjit_cache rnnjit_support LABELS cache)
target_include_directories(cache_test PRIVATE ${RNNJIT_SQLITE_INCLUDE})

if(RNNJIT_BUILD_TOOLS)
  # rnnjit_templates for version() and template_hash(), to make current and stale rows; like
  # rnnjit-cache itself, the test builds without the engine.
  rnnjit_add_catch_test(NAME cli_cache_test SOURCES cli_cache_test.cpp LIBS rnnjit_cache rnnjit_templates rnnjit_support
                        LABELS cli)
  target_include_directories(cli_cache_test PRIVATE ${RNNJIT_SQLITE_INCLUDE})
  target_compile_definitions(cli_cache_test PRIVATE RNNJIT_CACHE_TOOL="$<TARGET_FILE:rnnjit-cache>")
  add_dependencies(cli_cache_test rnnjit-cache)
  # Random and mutated imports and command sequences from several processes against a model
  # (about a minute on two cores).
  rnnjit_add_catch_test(NAME cache_property_test SOURCES cache_property_test.cpp
                        LIBS rnnjit_cache rnnjit_templates rnnjit_support LABELS cache)
  target_compile_definitions(cache_property_test PRIVATE RNNJIT_CACHE_TOOL="$<TARGET_FILE:rnnjit-cache>")
  add_dependencies(cache_property_test rnnjit-cache)
  # rnnjit-tune's usage errors, apart: that tool needs the engine; and the --help of the other
  # GPU programs.
  rnnjit_add_catch_test(NAME cli_tune_test SOURCES cli_tune_test.cpp LABELS cli)
  target_compile_definitions(cli_tune_test PRIVATE RNNJIT_TUNE_TOOL="$<TARGET_FILE:rnnjit-tune>"
                             RNNJIT_EXAMPLE="$<TARGET_FILE:rnnjit-example>" RNNJIT_BENCH="$<TARGET_FILE:rnnjit-bench>")
  add_dependencies(cli_tune_test rnnjit-tune rnnjit-example rnnjit-bench)
  # The sweep's shapes are checked with the tools' parser (tools/shapes.hpp).
  find_package(nlohmann_json REQUIRED)
  target_include_directories(cli_tune_test PRIVATE ${PROJECT_SOURCE_DIR}/tools ${PROJECT_SOURCE_DIR}/engine/include)
  target_link_libraries(cli_tune_test PRIVATE rnnjit_common nlohmann_json::nlohmann_json)
endif()

# The GPU soak: the engine and the cache under threads and processes (tests/soak).
add_subdirectory(soak)
