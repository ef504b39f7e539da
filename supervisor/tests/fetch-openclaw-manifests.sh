#!/bin/sh
# Fetches the plugin manifests shipped in real OpenClaw npm packages, for the
# `real_openclaw_manifests_parse` test (supervisor/tests/integration/control.rs).
#
#   supervisor/tests/fetch-openclaw-manifests.sh DIR
#   OUTPOST_OPENCLAW_MANIFESTS=DIR cargo test -p outpost-supervisor real_openclaw
#
# Each package is `npm pack`ed at a pinned version into a scratch directory and
# extracted; only its `openclaw.plugin.json` files and their `package.json` are kept,
# under DIR/<package>/<path inside the package>. Nothing fetched here is committed.
# Needs `npm`, `tar` and network access to the npm registry.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dest=$1

# Pinned: bump on purpose, and run the test, when OpenClaw ships a new manifest format.
packages="
openclaw@2026.9.6
@openclaw/matrix@2026.9.6
@openclaw/msteams@2026.9.5
@openclaw/nostr@2026.9.5
@openclaw/zalouser@2026.9.4
@openclaw/codex@2026.9.5
"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT INT TERM
mkdir -p "$dest"

for spec in $packages; do
    name=${spec%@*}
    echo "fetching $spec" >&2
    tarball=$(cd "$scratch" && npm pack --silent "$spec" | tail -n 1)
    unpacked="$scratch/unpacked"
    rm -rf "$unpacked"
    mkdir -p "$unpacked"
    tar -xzf "$scratch/$tarball" -C "$unpacked"
    rm -f "$scratch/$tarball"
    # npm tarballs hold everything under package/.
    (cd "$unpacked/package" && find . -name openclaw.plugin.json -not -path '*/node_modules/*') |
        while IFS= read -r manifest; do
            dir=$(dirname "$manifest")
            target="$dest/$name/$dir"
            mkdir -p "$target"
            cp "$unpacked/package/$manifest" "$target/"
            if [ -f "$unpacked/package/$dir/package.json" ]; then
                cp "$unpacked/package/$dir/package.json" "$target/"
            fi
        done
done

count=$(find "$dest" -name openclaw.plugin.json | wc -l)
echo "kept $count manifests in $dest" >&2
