// SPDX-License-Identifier: Apache-2.0
// tests/support/catch_main.cpp: the Catch2 main of every suite (Catch2 3 brings its own).
#if !defined(SEQMIX_CATCH3)
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
#endif
