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
# pkg-config finds it on Debian; where there is none (the GPU machine, with the Debian packages
# unpacked into a prefix on CMAKE_PREFIX_PATH), the header and library are looked up directly.
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(TURBOJPEG QUIET IMPORTED_TARGET libturbojpeg)
endif()
if(TARGET PkgConfig::TURBOJPEG)
  add_library(probnas_turbojpeg ALIAS PkgConfig::TURBOJPEG)
else()
  find_path(TURBOJPEG_INCLUDE_DIR turbojpeg.h)
  find_library(TURBOJPEG_LIBRARY NAMES turbojpeg libturbojpeg.so.0)
  if(NOT TURBOJPEG_INCLUDE_DIR OR NOT TURBOJPEG_LIBRARY)
    message(FATAL_ERROR "libjpeg-turbo's TurboJPEG (turbojpeg.h, libturbojpeg) not found: apt-get install libturbojpeg0-dev")
  endif()
  add_library(probnas_turbojpeg INTERFACE IMPORTED)
  target_include_directories(probnas_turbojpeg INTERFACE ${TURBOJPEG_INCLUDE_DIR})
  target_link_libraries(probnas_turbojpeg INTERFACE ${TURBOJPEG_LIBRARY})
endif()

set(PROBNAS_WITH_CUDA OFF)
if(PROBNAS_CUDA STREQUAL "ON" OR (PROBNAS_CUDA STREQUAL "AUTO" AND TARGET torch_cuda))
  set(PROBNAS_WITH_CUDA ON)
endif()

# NCCL reduces CUDA tensors between ranks (comm.backend = auto/nccl). It comes with the CUDA toolkit
# or as a package of its own (the GPU machine's nvidia-nccl: PROBNAS_NCCL_ROOT); its library may be
# only libnccl.so.2.
set(PROBNAS_NCCL "AUTO" CACHE STRING "NCCL backend for CUDA tensors: AUTO (CUDA builds where NCCL is found), ON, OFF")
set(PROBNAS_WITH_NCCL OFF)
if(PROBNAS_NCCL STREQUAL "ON" AND NOT PROBNAS_WITH_CUDA)
  message(FATAL_ERROR "PROBNAS_NCCL=ON needs a CUDA LibTorch (this one, ${TORCH_INSTALL_PREFIX}, has no torch_cuda): "
                      "point Torch_DIR or CMAKE_PREFIX_PATH at a CUDA LibTorch")
endif()
if(PROBNAS_WITH_CUDA AND NOT PROBNAS_NCCL STREQUAL "OFF")
  find_package(CUDAToolkit QUIET)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS $ENV{PROBNAS_NCCL_ROOT}/include ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2
               HINTS $ENV{PROBNAS_NCCL_ROOT}/lib ${CUDAToolkit_LIBRARY_DIR} /usr/local/cuda/lib64)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY AND TARGET CUDA::cudart)
    set(PROBNAS_WITH_NCCL ON)
  elseif(PROBNAS_NCCL STREQUAL "ON")
    message(FATAL_ERROR "PROBNAS_NCCL=ON but NCCL (nccl.h: ${NCCL_INCLUDE_DIR}, library: ${NCCL_LIBRARY}) or the CUDA "
                        "runtime was not found: set PROBNAS_NCCL_ROOT to NCCL's prefix")
  endif()
endif()
message(STATUS "probnas: LibTorch ${Torch_VERSION} at ${TORCH_INSTALL_PREFIX}, CUDA paths: ${PROBNAS_WITH_CUDA}, "
               "NCCL: ${PROBNAS_WITH_NCCL} ${NCCL_LIBRARY}")

# Our code is built with warnings as errors-in-spirit: on, and kept at zero. Third-party headers come in as SYSTEM.
function(probnas_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
endfunction()
