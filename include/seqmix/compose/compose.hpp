// SPDX-License-Identifier: Apache-2.0
// seqmix/compose/compose.hpp: layers and compile-time stacks.
#pragma once

#include "layer.hpp"
#include "stack.hpp"
#include "toy_layer.hpp"
