# engine/ and kernel_templates/: CPU tests run everywhere; GPU tests skip without a GPU.
rnnjit_add_catch_test(NAME reference_test SOURCES reference_test.cpp LIBS rnnjit LABELS reference)
# The engine's internals: engine/src, kernel_templates/ (rnnjit_shared.h) and the CUDA headers.
set(RNNJIT_INTERNAL ${PROJECT_SOURCE_DIR}/engine/src ${PROJECT_SOURCE_DIR}/kernel_templates ${CUDAToolkit_INCLUDE_DIRS})
foreach(module families tuner jit plan plan_cache validate)
  rnnjit_add_catch_test(NAME ${module}_test SOURCES ${module}_test.cpp LIBS rnnjit rnnjit_support LABELS ${module})
  target_include_directories(${module}_test PRIVATE ${RNNJIT_INTERNAL})
endforeach()

# The no-driver path, forced on machines that have a driver too.
rnnjit_add_catch_test(NAME api_test SOURCES api_test.cpp LIBS rnnjit LABELS api
                      ENV "RNNJIT_DRIVER_LIBRARY=/nonexistent/libcuda.so.1")

foreach(module engine families cache background sequence bf16 multi)
  rnnjit_add_catch_test(NAME gpu_${module}_test SOURCES gpu_${module}_test.cpp LIBS CUDA::cudart_static rnnjit_cache GPU)
  target_include_directories(gpu_${module}_test PRIVATE ${RNNJIT_INTERNAL})
endforeach()
# Two GPUs or skipped; the tools it runs as two processes on one cache file.
target_compile_definitions(gpu_multi_test PRIVATE RNNJIT_TEST_MIN_GPUS=2 RNNJIT_TUNE_TOOL="$<TARGET_FILE:rnnjit-tune>"
                                                  RNNJIT_CACHE_TOOL="$<TARGET_FILE:rnnjit-cache>")
add_dependencies(gpu_multi_test rnnjit-tune rnnjit-cache)
# rnnjit-tune --dtype bf16, run as a user runs it.
target_compile_definitions(gpu_bf16_test PRIVATE RNNJIT_TUNE_TOOL="$<TARGET_FILE:rnnjit-tune>")
add_dependencies(gpu_bf16_test rnnjit-tune)
