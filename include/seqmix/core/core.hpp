// SPDX-License-Identifier: Apache-2.0
// seqmix/core/core.hpp: the core vocabulary (views, dtypes, errors, checks).
#pragma once

#include "axis.hpp"
#include "backend.hpp"
#include "check.hpp"
#include "dtype.hpp"
#include "error.hpp"
#include "index_view.hpp"
#include "layout.hpp"
#include "tensor_view.hpp"
