#!/bin/sh
# Installs one binary of the suite, verified by sha256. POSIX sh; used by the actions and by
# other CI systems (GitLab, Jenkins, Buildkite).
#
#   install.sh [options] NAME
#
#   NAME                  change-detect | release-descriptor-render | bundle-json-gen |
#                         ssh-deploy | ecs-taskdef-update | health-gate
#   --version X.Y.Z       release to download (default: the one recorded in actions/VERSION)
#   --sha256 HEX          expected sha256 of the archive (strongest: pin it in your CI config)
#   --checksums FILE      sha256sum-format file listing the archives (default: the committed
#                         actions/checksums.sha256 beside this script, when present)
#   --dir DIR             where to put the binary (default: ./bin)
#   --base-url URL        release download base, laid out like a GitHub release:
#                         URL/vX.Y.Z/<archive> and URL/vX.Y.Z/checksums.sha256 (default:
#                         $DEPLOY_SUITE_DOWNLOAD_URL, else https://github.com/$REPO/releases/download).
#                         For GHES and air-gapped runners: a mirror of the release assets
#                         (https:// or file://); the action's `download-url` input
#   --repo OWNER/NAME     repository of the releases (default: deploy-suite/actions)
#   --target TRIPLE       override the detected platform
#   --mode MODE           auto | download | build (default: download). `build` compiles NAME
#                         from the source tree this script belongs to with cargo; `auto`
#                         downloads when the recorded release matches this source tree's
#                         version, else builds (for a repo's own CI on unreleased commits)
#   --tool-cache DIR      cache the verified binary under DIR/deploy-suite/NAME/VERSION/TARGET
#   --github-output FILE  also append `path=<binary>` to FILE (the action uses this)
#   --binary PATH         use this preinstalled binary (checked to run `--version`) instead
#                         of installing one: for air-gapped and GHES runners
#   --attestation MODE    auto | require | skip (default: $DEPLOY_SUITE_ATTESTATION, else auto).
#                         auto: after the sha256 check, verify the archive's build provenance
#                         with `gh attestation verify` when `gh` is installed and logged in
#                         (GH_TOKEN), else say how to do it; require: fail unless verified
#
# Environment: DEPLOY_SUITE_DOWNLOAD_URL (default --base-url), DEPLOY_SUITE_CA_FILE (extra CA
# bundle, PEM, for an https mirror with an internal CA), DEPLOY_SUITE_ATTESTATION.
#
# Exit codes: 0 installed, 2 usage error or nothing to install, 3 download or verification failed.
# Every message is one line per message: a value from outside (an input, a path, a URL) is shown
# with newlines as \n and `##[` as `#\#[`, so it can never form a workflow command.
set -eu

repo="deploy-suite/actions"
name="" version="" sha256="" checksums="" dir="./bin" base_url="" target="" mode="download"
tool_cache="" github_output="" preinstalled="" attestation="${DEPLOY_SUITE_ATTESTATION:-auto}"
here="$(cd "$(dirname "$0")" && pwd)"
source_root="$(cd "$here/.." && pwd)"

# runner_safe: stdin as one line a runner reads as plain text. GitHub's runner takes a line as
# a command when it starts with `::` after leading whitespace, or holds `##[` anywhere: newlines
# become a visible \n (so no later line can start with `::`) and `##[` becomes `#\#[`.
runner_safe() {
  LC_ALL=C awk 'NR > 1 { printf "\\n" } { gsub(/\r/, "\\r"); gsub(/##\[/, "#\\#["); printf "%s", $0 } END { print "" }'
}
say() { printf 'install.sh: %s' "$*" | runner_safe >&2; }
# show_lines: another program's output (a preinstalled binary, curl, gh), each line made safe.
show_lines() { while IFS= read -r line || [ -n "$line" ]; do printf '  %s' "$line" | runner_safe >&2; done; }
usage_error() { say "error: $*"; exit 2; }
fail() { say "error: $*"; exit 3; }

while [ $# -gt 0 ]; do
  case "$1" in
    --version) version="${2-}"; shift 2 ;;
    --sha256) sha256="${2-}"; shift 2 ;;
    --checksums) checksums="${2-}"; shift 2 ;;
    --dir) dir="${2-}"; shift 2 ;;
    --base-url) base_url="${2-}"; shift 2 ;;
    --repo) repo="${2-}"; shift 2 ;;
    --target) target="${2-}"; shift 2 ;;
    --mode) mode="${2-}"; shift 2 ;;
    --tool-cache) tool_cache="${2-}"; shift 2 ;;
    --github-output) github_output="${2-}"; shift 2 ;;
    --binary) preinstalled="${2-}"; shift 2 ;;
    --attestation) attestation="${2-}"; shift 2 ;;
    -h | --help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) usage_error "unknown option $1 (see --help)" ;;
    *) [ -z "$name" ] || usage_error "one NAME only"; name="$1"; shift ;;
  esac
done

case "$name" in
  change-detect | release-descriptor-render | bundle-json-gen | ssh-deploy | ecs-taskdef-update | health-gate) ;;
  "") usage_error "NAME is required (see --help)" ;;
  *) usage_error "unknown binary '$name'; expected one of change-detect, release-descriptor-render, bundle-json-gen, ssh-deploy, ecs-taskdef-update, health-gate" ;;
esac
case "$mode" in auto | download | build) ;; *) usage_error "--mode (the action's install input) must be auto, download or build, not '$mode'" ;; esac
case "$attestation" in auto | require | skip) ;; *) usage_error "--attestation must be auto, require or skip, not '$attestation'" ;; esac

# --- platform -------------------------------------------------------------------------------
detect_target() {
  os="${RUNNER_OS:-$(uname -s)}"
  arch="${RUNNER_ARCH:-$(uname -m)}"
  case "$arch" in
    X64 | x86_64 | amd64) arch=x86_64 ;;
    ARM64 | aarch64 | arm64) arch=aarch64 ;;
    *) usage_error "unsupported architecture '$arch' (supported: x86_64, aarch64); use install: build or binary-path" ;;
  esac
  case "$os" in
    Linux) echo "$arch-unknown-linux-musl" ;;
    macOS | Darwin) echo "$arch-apple-darwin" ;;
    Windows | MINGW* | MSYS* | CYGWIN*)
      [ "$arch" = x86_64 ] || usage_error "Windows builds exist for x86_64 only"
      echo "x86_64-pc-windows-msvc" ;;
    *) usage_error "unsupported OS '$os' (supported: Linux, macOS, Windows)" ;;
  esac
}
[ -n "$target" ] || [ -n "$preinstalled" ] || target="$(detect_target)"
exe=""
case "$target" in *windows*) exe=".exe" ;; esac

publish() {
  binary="$1"
  say "installed $binary"
  if [ -n "$github_output" ]; then
    case "$binary" in *'
'*) fail "binary path contains a newline" ;; esac
    printf 'path=%s\n' "$binary" >>"$github_output"
  fi
  printf '%s\n' "$binary"
}

# --- preinstalled binary --------------------------------------------------------------------
if [ -n "$preinstalled" ]; then
  [ -x "$preinstalled" ] || usage_error "binary-path '$preinstalled' is not an executable file"
  version_text="$("$preinstalled" --version 2>&1)" || {
    printf '%s\n' "$version_text" | show_lines
    usage_error "binary-path '$preinstalled' does not run"
  }
  printf '%s\n' "$version_text" | show_lines
  publish "$preinstalled"
  exit 0
fi

# --- recorded release -----------------------------------------------------------------------
recorded_version=""
if [ -f "$source_root/actions/VERSION" ]; then
  recorded_version="$(tr -d ' \r\n' <"$source_root/actions/VERSION")"
fi
[ -n "$checksums" ] || { [ -f "$source_root/actions/checksums.sha256" ] && checksums="$source_root/actions/checksums.sha256"; } || true
source_version=""
if [ -f "$source_root/Cargo.toml" ]; then
  source_version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' "$source_root/Cargo.toml" | head -1)"
fi

if [ "$mode" = auto ]; then
  if [ -z "$version" ] && [ -n "$recorded_version" ] && [ "$recorded_version" != unreleased ] &&
     { [ -z "$source_version" ] || [ "$recorded_version" = "$source_version" ]; }; then
    mode=download
  elif command -v cargo >/dev/null 2>&1 && [ -f "$source_root/Cargo.toml" ]; then
    say "no released binary recorded for this source (recorded: ${recorded_version:-none}, source: ${source_version:-unknown}); building from source"
    mode=build
  else
    usage_error "no released binary is recorded for this commit (actions/VERSION: ${recorded_version:-missing}) and cargo is not installed: main between releases carries no binaries or checksums; pin the action to a version tag (@vX.Y.Z, or @v1), or set install: build on a runner with Rust"
  fi
fi

# --- build from source ----------------------------------------------------------------------
if [ "$mode" = build ]; then
  command -v cargo >/dev/null 2>&1 || usage_error "install mode 'build' needs cargo (install Rust with rustup)"
  [ -f "$source_root/Cargo.toml" ] || usage_error "no source tree at $source_root"
  target_dir="${CARGO_TARGET_DIR:-$source_root/target}"
  say "cargo build --release --locked -p $name"
  (cd "$source_root" && cargo build --release --locked -p "$name" --bin "$name" >&2) ||
    fail "cargo build failed"
  mkdir -p "$dir"
  cp "$target_dir/release/$name$exe" "$dir/$name$exe"
  publish "$(cd "$dir" && pwd)/$name$exe"
  exit 0
fi

# --- download and verify --------------------------------------------------------------------
[ -n "$version" ] || version="$recorded_version"
case "$version" in
  "" | unreleased) usage_error "this ref records no release (actions/VERSION: ${recorded_version:-missing}): main between releases carries no binaries or checksums. Pin the action to a version tag (@vX.Y.Z or @v1), use install: auto or build (cargo builds from this checkout), or pass --version X.Y.Z with --sha256" ;;
esac
version="${version#v}"
case "$target" in *windows*) archive="$name-$version-$target.zip" ;; *) archive="$name-$version-$target.tar.gz" ;; esac
[ -n "$base_url" ] || base_url="${DEPLOY_SUITE_DOWNLOAD_URL:-}"
[ -n "$base_url" ] || base_url="https://github.com/$repo/releases/download"
base_url="${base_url%/}"
url="$base_url/v$version/$archive"

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else fail "neither sha256sum nor shasum is installed"; fi
}

if [ -z "$sha256" ] && [ -n "$checksums" ]; then
  [ -f "$checksums" ] || usage_error "checksums file $checksums does not exist"
  sha256="$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1; exit }' "$checksums")"
  if [ -z "$sha256" ] && [ "$version" = "$recorded_version" ]; then
    fail "$archive is not listed in $checksums"
  fi
fi

cached=""
if [ -n "$tool_cache" ]; then
  cached="$tool_cache/deploy-suite/$name/$version/$target"
  if [ -n "$sha256" ] && [ -f "$cached/$name$exe" ] && [ -f "$cached/archive.sha256" ] &&
     [ "$(cat "$cached/archive.sha256")" = "$sha256" ] &&
     [ "$(sha256_of "$cached/$name$exe")" = "$(cat "$cached/binary.sha256" 2>/dev/null)" ]; then
    say "tool cache hit: $cached"
    mkdir -p "$dir"
    cp "$cached/$name$exe" "$dir/$name$exe"
    chmod +x "$dir/$name$exe"
    publish "$(cd "$dir" && pwd)/$name$exe"
    exit 0
  fi
fi

tmp="$(mktemp -d 2>/dev/null || mktemp -d -t deploy-suite)"
trap 'rm -rf "$tmp"' EXIT INT TERM

ca_file="${DEPLOY_SUITE_CA_FILE:-}"
[ -z "$ca_file" ] || [ -f "$ca_file" ] || usage_error "DEPLOY_SUITE_CA_FILE '$ca_file' does not exist"
fetch() {
  fetch_url="$1" fetch_out="$2"
  if command -v curl >/dev/null 2>&1; then
    set -- --proto '=https' --tlsv1.2 -fsSL --retry 5 --retry-delay 2
    [ -z "$ca_file" ] || set -- "$@" --cacert "$ca_file"
    curl "$@" -o "$fetch_out" "$fetch_url" 2>"$tmp/fetch.err" || { show_lines <"$tmp/fetch.err"; return 1; }
  elif command -v wget >/dev/null 2>&1; then
    set -- -q --https-only
    [ -z "$ca_file" ] || set -- "$@" --ca-certificate="$ca_file"
    wget "$@" -O "$fetch_out" "$fetch_url" 2>"$tmp/fetch.err" || { show_lines <"$tmp/fetch.err"; return 1; }
  else
    fail "neither curl nor wget is installed"
  fi
}
case "$base_url" in https://*) ;; file://*) ;; *) usage_error "--base-url must be https:// (or file:// for mirrors on disk)" ;; esac
fetch_any() {
  case "$1" in
    file://*) cp "${1#file://}" "$2" 2>"$tmp/fetch.err" || { show_lines <"$tmp/fetch.err"; return 1; } ;;
    *) fetch "$1" "$2" ;;
  esac
}

say "downloading $url"
fetch_any "$url" "$tmp/$archive" || fail "download failed: $url"
if [ -z "$sha256" ]; then
  # Trust on first use of the release's own checksum file; say so. Pin --sha256 to avoid it.
  # Releases before checksums.sha256 published sha256.sum (same format).
  say "warning: no pinned checksum; verifying against the release's checksums.sha256 (pin --sha256, or use a version tag's committed actions/checksums.sha256, for a stronger check)"
  fetch_any "$base_url/v$version/checksums.sha256" "$tmp/release.sha256" ||
    fetch_any "$base_url/v$version/sha256.sum" "$tmp/release.sha256" ||
    fail "cannot download checksums.sha256 (nor sha256.sum) of v$version from $base_url"
  sha256="$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/release.sha256")"
  [ -n "$sha256" ] || fail "$archive is not listed in the release's checksums.sha256"
fi
actual="$(sha256_of "$tmp/$archive")"
[ "$actual" = "$sha256" ] || fail "checksum mismatch for $archive: expected $sha256, got $actual; refusing to install"
say "sha256 verified: $archive $actual"

# Build provenance: the release workflow attests every archive (actions/attest-build-provenance).
how_to_attest="gh attestation verify $archive --repo $repo"
gh_ready=""
if [ "$attestation" != skip ] && command -v gh >/dev/null 2>&1 && gh auth status >/dev/null 2>&1; then gh_ready=1; fi
if [ -n "$gh_ready" ]; then
  if gh attestation verify "$tmp/$archive" --repo "$repo" >"$tmp/attest.out" 2>&1; then
    say "build attestation verified: $archive was built by $repo's release workflow"
  else
    show_lines <"$tmp/attest.out"
    fail "build attestation of $archive does not verify against $repo; refusing to install (--attestation skip to install on the sha256 alone)"
  fi
elif [ "$attestation" = require ]; then
  fail "--attestation require, but gh is not installed or not logged in (set GH_TOKEN); verify by hand with: $how_to_attest"
elif [ "$attestation" = auto ]; then
  say "build attestation not verified (gh not installed or not logged in); to verify: $how_to_attest"
fi

mkdir -p "$tmp/unpacked"
case "$archive" in
  *.zip) (cd "$tmp/unpacked" && unzip -q "../$archive") || fail "cannot unpack $archive" ;;
  *) tar -xzf "$tmp/$archive" -C "$tmp/unpacked" 2>"$tmp/unpack.err" || { show_lines <"$tmp/unpack.err"; fail "cannot unpack $archive"; } ;;
esac
[ -f "$tmp/unpacked/$name$exe" ] || fail "$archive does not contain $name$exe"
mkdir -p "$dir"
cp "$tmp/unpacked/$name$exe" "$dir/$name$exe"
chmod +x "$dir/$name$exe"
if [ -n "$cached" ]; then
  if ! { mkdir -p "$cached" && cp "$dir/$name$exe" "$cached/$name$exe" &&
    printf '%s\n' "$sha256" >"$cached/archive.sha256" &&
    sha256_of "$cached/$name$exe" >"$cached/binary.sha256"; }; then
    say "warning: could not write the tool cache $cached"
  fi
fi
publish "$(cd "$dir" && pwd)/$name$exe"
