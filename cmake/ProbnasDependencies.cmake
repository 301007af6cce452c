# LibTorch: Debian's libtorch-dev on CPU machines; a CUDA LibTorch via Torch_DIR/CMAKE_PREFIX_PATH on GPU machines.
find_package(Torch REQUIRED)
find_package(MPI REQUIRED COMPONENTS C)
find_package(HDF5 REQUIRED COMPONENTS C)
find_package(Boost REQUIRED COMPONENTS program_options)
find_package(ZLIB REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(Threads REQUIRED)
# libjpeg-turbo's TurboJPEG API (Debian: libturbojpeg0-dev): decodes image folders in probnas convert
# and the JPEG shards in the loader threads.
find_package(PkgConfig REQUIRED)
pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)

set(PROBNAS_WITH_CUDA OFF)
if(PROBNAS_CUDA STREQUAL "ON" OR (PROBNAS_CUDA STREQUAL "AUTO" AND TARGET torch_cuda))
  set(PROBNAS_WITH_CUDA ON)
endif()
message(STATUS "probnas: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}, CUDA paths: ${PROBNAS_WITH_CUDA}")

# Our code is built with warnings as errors-in-spirit: on, and kept at zero. Third-party headers come in as SYSTEM.
function(probnas_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
endfunction()
