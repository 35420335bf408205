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

# seqmix_target_defaults(<target> [OPT <level>]): warnings, ISA flags, optimisation level.
function(seqmix_target_defaults target)
  cmake_parse_arguments(ARG "" "OPT" "" ${ARGN})
  target_link_libraries(${target} PRIVATE seqmix::seqmix)
  target_compile_options(${target} PRIVATE -Wall -Wextra ${SEQMIX_ARCH_FLAGS})
  if(SEQMIX_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(ARG_OPT AND CMAKE_BUILD_TYPE MATCHES "Release")
    target_compile_options(${target} PRIVATE -O${ARG_OPT})
  endif()
endfunction()
