# SPDX-License-Identifier: Apache-2.0
# tools/lib/deps.sh: sourced by tools/run-tests and tools/run-benchmarks. seqmix_ensure_packages PKG...
# installs the Debian packages that are missing (apt-get when root; otherwise prints the one line to run).
seqmix_ensure_packages() {
  local missing=()
  local p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "Missing Debian packages. Run:" >&2
    echo "  sudo apt-get install -y ${missing[*]}" >&2
    return 1
  fi
}

# Packages every build of seqmix needs (library, tests, tools, benchmarks).
SEQMIX_BUILD_PACKAGES=(build-essential cmake g++ libxsimd-dev libeigen3-dev catch2 libbenchmark-dev
  nlohmann-json3-dev libomp-dev)
