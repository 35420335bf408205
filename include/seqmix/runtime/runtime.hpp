// SPDX-License-Identifier: Apache-2.0
// seqmix/runtime/runtime.hpp: executors, parallel_for and workspaces.
#pragma once

#include "executor.hpp"
#include "context.hpp"
#include "parallel_for.hpp"
#include "workspace.hpp"
