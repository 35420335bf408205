// SPDX-License-Identifier: Apache-2.0
// tests/support/catch.hpp: one include for Catch2 2.13 (Debian 12) and Catch2 3.
#pragma once

#if defined(SEQMIX_CATCH3)
#include <catch2/catch_all.hpp>
#define SEQMIX_CATCH_MATCHERS_NS Catch::Matchers
#else
#include <catch2/catch.hpp>
#define SEQMIX_CATCH_MATCHERS_NS Catch::Matchers
#endif

namespace seqmix::testing {
/// Matches an exception message containing `s` (ContainsSubstring in Catch2 3, Contains in 2).
inline auto message_contains(const std::string& s) {
#if defined(SEQMIX_CATCH3)
  return Catch::Matchers::MessageMatches(Catch::Matchers::ContainsSubstring(s));
#else
  return Catch::Matchers::Predicate<std::exception>(
      [s](const std::exception& e) { return std::string(e.what()).find(s) != std::string::npos; },
      "message contains \"" + s + "\"");
#endif
}
/// Matches an exception whose message is exactly `s`.
inline auto message_is(const std::string& s) { return Catch::Matchers::Message(s); }
}  // namespace seqmix::testing
