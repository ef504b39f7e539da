#!/bin/sh
# Installs Outpost into a prefix (default /usr/local):
#
#   PREFIX/bin/outpost, PREFIX/bin/outpost-conformance      cargo install --path
#   PREFIX/share/outpost/plugins/                            the bundled plugins
#   PREFIX/share/outpost/rust/outpost-sdk, outpost-protocol  the SDK's sources, for
#                                                            `outpost new plugin --lang rust`
#   PREFIX/share/man/man1/outpost*.1                         man pages
#   PREFIX/share/{bash-completion,zsh,fish}/...              shell completions
#
# Usage: scripts/install.sh [--debug] [PREFIX]
#   --debug  build without optimisations (quicker; what the tests install)
# Builds go to the workspace's target/ (or CARGO_TARGET_DIR), so a second install only
# rebuilds what changed. Needs the Rust toolchain and the crates.io registry.
set -eu

profile=
if [ "${1:-}" = "--debug" ]; then
    profile=--debug
    shift
fi
prefix=${1:-/usr/local}
repo=$(cd "$(dirname "$0")/.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
mkdir -p "$prefix"
prefix=$(cd "$prefix" && pwd)
share=$prefix/share/outpost

for crate in supervisor/cli conformance; do
    # shellcheck disable=SC2086 # $profile is empty or one word
    cargo install --locked --force --quiet $profile --path "$repo/$crate" \
        --root "$prefix" --target-dir "$target"
done

# The bundled plugins: what outpost finds in outpost.bundledDir, off until a config
# enables them. The Rust example's binary is not installed: it needs a build of its own.
rm -rf "$share/plugins"
mkdir -p "$share/plugins"
cp -R "$repo/plugins/python-example" "$repo/plugins/node-example" "$share/plugins/"

# The SDK as `cargo package` makes it (the manifest free of workspace inheritance),
# the protocol crate beside it by path: a generated Rust plugin builds with no
# registry serving outpost-sdk.
packages=$(mktemp -d)
trap 'rm -rf "$packages"' EXIT
cargo package --quiet --locked --no-verify --allow-dirty \
    --manifest-path "$repo/Cargo.toml" -p outpost-protocol -p outpost-sdk \
    --target-dir "$packages"
rm -rf "$share/rust"
mkdir -p "$share/rust"
for crate in outpost-protocol outpost-sdk; do
    tar -xzf "$packages"/package/"$crate"-*.crate -C "$share/rust"
    mv "$share/rust/$crate"-* "$share/rust/$crate"
done
sed -i 's|^\[dependencies\.outpost-protocol\]$|&\npath = "../outpost-protocol"|' \
    "$share/rust/outpost-sdk/Cargo.toml"
grep -q '^path = "../outpost-protocol"$' "$share/rust/outpost-sdk/Cargo.toml"

mkdir -p "$prefix/share/man/man1" "$prefix/share/bash-completion/completions" \
    "$prefix/share/zsh/site-functions" "$prefix/share/fish/vendor_completions.d"
"$prefix/bin/outpost" man --dir "$prefix/share/man/man1"
"$prefix/bin/outpost" completions bash >"$prefix/share/bash-completion/completions/outpost"
"$prefix/bin/outpost" completions zsh >"$prefix/share/zsh/site-functions/_outpost"
"$prefix/bin/outpost" completions fish >"$prefix/share/fish/vendor_completions.d/outpost.fish"

echo "Installed outpost and outpost-conformance in $prefix/bin, their files in $share."
case ":$PATH:" in
*":$prefix/bin:"*) ;;
*) echo "Add $prefix/bin to PATH to run them by name." ;;
esac
