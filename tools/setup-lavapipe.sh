#!/usr/bin/env bash
# Mesa's lavapipe: a Vulkan driver that runs on the CPU (llvmpipe), so the wgpu backend's
# code paths are tested on machines without a GPU. Downloads Debian's
# `mesa-vulkan-drivers` and `libvulkan1` with `apt-get download` into .lavapipe/debs/
# (once), unpacks them with `dpkg -x` (no root, nothing installed), writes an ICD file
# that points the Vulkan loader at the unpacked driver, and prints the environment to
# use it, for `eval "$(bash tools/setup-lavapipe.sh)"`:
#   VK_ICD_FILENAMES   the ICD file (only lavapipe is visible to Vulkan)
#   LD_LIBRARY_PATH    the unpacked loader, libvulkan.so.1
# Then `--device wgpu:cpu` (and ATTNKIT_TEST_DEVICE=wgpu:cpu for the tests) uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="$PWD/.lavapipe"
ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
case "$ARCH" in
  amd64) TRIPLET=x86_64-linux-gnu ;;
  arm64) TRIPLET=aarch64-linux-gnu ;;
  *) echo "error: no lavapipe set-up for architecture $ARCH" >&2; exit 1 ;;
esac
LIB="$DIR/root/usr/lib/$TRIPLET"
if [ ! -f "$LIB/libvulkan_lvp.so" ] || [ ! -e "$LIB/libvulkan.so.1" ]; then
  command -v apt-get >/dev/null || { echo "error: apt-get not found: lavapipe comes from Debian's mesa-vulkan-drivers" >&2; exit 1; }
  mkdir -p "$DIR/debs"
  echo "downloading mesa-vulkan-drivers and libvulkan1 (about 8 MB) into .lavapipe/debs ..." >&2
  (cd "$DIR/debs" && apt-get download mesa-vulkan-drivers libvulkan1 >&2) || {
    echo "error: apt-get download mesa-vulkan-drivers libvulkan1 failed (apt-get update first?)" >&2; exit 1; }
  for deb in "$DIR"/debs/*.deb; do dpkg -x "$deb" "$DIR/root"; done
fi
[ -f "$LIB/libvulkan_lvp.so" ] || { echo "error: $LIB/libvulkan_lvp.so missing after unpacking" >&2; exit 1; }
missing="$(LD_LIBRARY_PATH="$LIB" ldd "$LIB/libvulkan_lvp.so" | awk '/not found/ {print $1}' | tr '\n' ' ')"
if [ -n "$missing" ]; then
  echo "error: lavapipe needs libraries this system lacks: $missing(apt-get install mesa-vulkan-drivers brings them)" >&2
  exit 1
fi
cat > "$DIR/lvp_icd.json" <<JSON
{
    "ICD": {
        "api_version": "1.3.0",
        "library_path": "$LIB/libvulkan_lvp.so"
    },
    "file_format_version": "1.0.0"
}
JSON
echo "export VK_ICD_FILENAMES=\"$DIR/lvp_icd.json\""
echo "export LD_LIBRARY_PATH=\"$LIB\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
