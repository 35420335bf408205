# SPDX-License-Identifier: Apache-2.0
# Settings for seqmix's own executables (tests, benchmarks, examples, tools): warnings as errors and the
# ISA flags. None of this reaches the seqmix::seqmix interface target.
include(CheckCXXCompilerFlag)

set(_seqmix_default_arch "")
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64" AND EXISTS "/proc/cpuinfo")
  file(READ "/proc/cpuinfo" _cpuinfo)
  if(_cpuinfo MATCHES " avx2 " AND _cpuinfo MATCHES " fma " AND _cpuinfo MATCHES " f16c ")
    set(_seqmix_default_arch "-mavx2;-mfma;-mf16c")
  endif()
endif()
set(SEQMIX_ARCH_FLAGS "${_seqmix_default_arch}" CACHE STRING
  "ISA flags for seqmix's own tests, benchmarks, examples and tools (never the interface target); empty = baseline")
set(SEQMIX_WERROR ON CACHE BOOL "Treat warnings as errors in seqmix's own targets")

# g++ before 13 with AVX-512 enabled warns -W(maybe-)uninitialized inside AVX-512 intrinsics once inlined
# (GCC PR 105593). seqmix's headers silence it for their own code (SEQMIX_DIAG_PUSH, config.hpp), but the
# examples and benchmarks that call Eigen's products directly get it from Eigen's kernels: there the two
# warnings stay warnings, not errors.
set(_seqmix_gcc_avx512_werror_gap OFF)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_FLAGS "${SEQMIX_ARCH_FLAGS}")
  string(REPLACE ";" " " CMAKE_REQUIRED_FLAGS "${CMAKE_REQUIRED_FLAGS}")
  unset(SEQMIX_ARCH_HAS_AVX512 CACHE)  # re-checked when SEQMIX_ARCH_FLAGS change
  check_cxx_source_compiles("#ifndef __AVX512F__\n#error no AVX-512\n#endif\nint main() {}" SEQMIX_ARCH_HAS_AVX512)
  unset(CMAKE_REQUIRED_FLAGS)
  set(_seqmix_gcc_avx512_werror_gap ${SEQMIX_ARCH_HAS_AVX512})
endif()

# seqmix_target_defaults(<target> [OPT <level>]): warnings, ISA flags, optimisation level.
function(seqmix_target_defaults target)
  cmake_parse_arguments(ARG "" "OPT" "" ${ARGN})
  target_link_libraries(${target} PRIVATE seqmix::seqmix)
  target_compile_options(${target} PRIVATE -Wall -Wextra ${SEQMIX_ARCH_FLAGS})
  if(SEQMIX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
    if(_seqmix_gcc_avx512_werror_gap)
      target_compile_options(${target} PRIVATE -Wno-error=maybe-uninitialized -Wno-error=uninitialized)
    endif()
  endif()
  if(ARG_OPT AND CMAKE_BUILD_TYPE MATCHES "Release")
    target_compile_options(${target} PRIVATE -O${ARG_OPT})
  endif()
endfunction()
