# engine/ and kernel_templates/: CPU tests run everywhere; GPU tests skip without a GPU.
set(RNNJIT_INTERNAL ${PROJECT_SOURCE_DIR}/engine/src)

rnnjit_add_catch_test(NAME reference_test SOURCES reference_test.cpp LIBS rnnjit LABELS reference)
rnnjit_add_catch_test(NAME config_test SOURCES config_test.cpp LIBS rnnjit LABELS config)
target_include_directories(config_test PRIVATE ${RNNJIT_INTERNAL} ${CUDAToolkit_INCLUDE_DIRS})
rnnjit_add_catch_test(NAME nvrtc_test SOURCES nvrtc_test.cpp LIBS rnnjit LABELS nvrtc)
target_include_directories(nvrtc_test PRIVATE ${RNNJIT_INTERNAL} ${CUDAToolkit_INCLUDE_DIRS})
target_link_libraries(nvrtc_test PRIVATE rnnjit_log)

# The no-driver path, forced on machines that have a driver too.
rnnjit_add_catch_test(NAME api_test SOURCES api_test.cpp LIBS rnnjit LABELS api
                      ENV "RNNJIT_DRIVER_LIBRARY=/nonexistent/libcuda.so.1")

rnnjit_add_catch_test(NAME gpu_step_test SOURCES gpu_step_test.cpp LIBS CUDA::cudart_static GPU)
target_include_directories(gpu_step_test PRIVATE ${RNNJIT_INTERNAL} ${PROJECT_SOURCE_DIR}/cache/include)
rnnjit_add_catch_test(NAME gpu_cache_test SOURCES gpu_cache_test.cpp LIBS CUDA::cudart_static GPU)
target_include_directories(gpu_cache_test PRIVATE ${PROJECT_SOURCE_DIR}/cache/include)
