// SPDX-License-Identifier: Apache-2.0
// tests/support/support.hpp: everything a test needs (Catch2, tensors, random fills, comparison, tolerances).
#pragma once

#include "catch.hpp"
#include "compare.hpp"
#include "tensor.hpp"
#include "tolerance.hpp"
