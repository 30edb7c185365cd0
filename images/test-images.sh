#!/usr/bin/env bash
# `make test-images`: build the images with podman (no Docker engine needed) on a Debian
# base made here, and run the in-image checks as build steps (`podman run` needs cgroups
# this kind of machine does not give; `podman build --isolation=chroot` does not).
#
#   1. a minimal Debian base (debootstrap from Debian's archive, then `podman import`),
#      made once and kept as localhost/tlt-debian-base:$SUITE;
#   2. tlt-core on that base (TensorFlow then comes from PyPI);
#   3. images/tlt-core/Dockerfile.check on top: tlt --help, tlt sample-data, a tiny
#      tlt ssd train and the dataset_convert KFP component's executor, as user 10001;
#   4. trt-x86 up to its TensorRT layer (--target project): the TensorRT stage needs
#      NVIDIA's base image. trt-jetson is arm64-only on an NVIDIA L4T base: not built here.
#
# Needs root (debootstrap, podman's storage). Installs podman and debootstrap with apt when
# missing. Not part of `make test` / CI: it downloads the Python packages of the image.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SUITE="${SUITE:-bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
WORK="${TLT_IMAGE_WORK:-/var/tmp/tlt-image-build}"
BASE="localhost/tlt-debian-base:${SUITE}"
TAG="${TAG:-test}"
BUILD=(podman build --isolation=chroot --network=host)

step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

if [[ "$(id -u)" != 0 ]]; then
  echo "test-images: run as root (debootstrap and podman's storage need it)" >&2
  exit 2
fi
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  step "installing podman and debootstrap"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman debootstrap
fi
started=$(date +%s)

if ! podman image exists "$BASE"; then
  step "making $BASE with debootstrap"
  mkdir -p "$WORK"
  if [[ ! -f "$WORK/rootfs.$SUITE.done" ]]; then  # a finished debootstrap is kept
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
      "$SUITE" "$WORK/rootfs" "$MIRROR"
    touch "$WORK/rootfs.$SUITE.done"
  fi
  # The base trusts the certificate authorities this machine adds to Debian's (a package
  # proxy may present its own): pip inside the build reaches PyPI the way this host does.
  if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$WORK/rootfs/usr/local/share/ca-certificates/"
    chroot "$WORK/rootfs" update-ca-certificates >/dev/null
  fi
  chroot "$WORK/rootfs" apt-get clean
  rm -rf "$WORK/rootfs/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs" --numeric-owner -c . | podman import \
    --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$BASE"
  rm -rf "$WORK/rootfs" "$WORK/rootfs.$SUITE.done"
fi

cd "$REPO"
step "tlt-core on $BASE"
"${BUILD[@]}" --build-arg "BASE_IMAGE=$BASE" -t "localhost/tlt-core:$TAG" \
  -f images/tlt-core/Dockerfile .

step "in-image checks (as the image's user)"
"${BUILD[@]}" --build-arg "IMAGE=localhost/tlt-core:$TAG" -t "localhost/tlt-core-check:$TAG" \
  -f images/tlt-core/Dockerfile.check .

if [[ "${SKIP_TRT:-0}" != 1 ]]; then
  step "trt-x86 up to the TensorRT layer on $BASE"
  "${BUILD[@]}" --build-arg "BASE_IMAGE=$BASE" --target project \
    -t "localhost/trt-x86-project:$TAG" -f images/trt-x86/Dockerfile .
fi

step "done in $(( $(date +%s) - started )) s"
