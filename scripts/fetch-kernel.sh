#!/bin/sh
# fetch-kernel.sh DESTDIR — fetch Debian's current bookworm amd64 kernel
# for the stage-2 agent without installing it.
#
# Result (idempotent: nothing is downloaded when DESTDIR/VERSION exists):
#   DESTDIR/VERSION           kernel release, e.g. 6.1.0-56-amd64
#   DESTDIR/vmlinuz           the bzImage (what iPXE boots)
#   DESTDIR/vmlinux           the uncompressed ELF kernel (PVH entry note);
#                             QEMU -kernel boots it without decompressing
#   DESTDIR/root/lib/modules/VERSION/  modules + modules.dep/alias (depmod)
set -eu
dest=${1:-.cache/kernel}
if [ -s "$dest/VERSION" ] && [ -s "$dest/vmlinuz" ] && [ -s "$dest/vmlinux" ] &&
	[ -s "$dest/root/lib/modules/$(cat "$dest/VERSION")/modules.dep" ]; then
	echo "fetch-kernel: $(cat "$dest/VERSION") already in $dest"
	exit 0
fi
for tool in apt-get apt-cache dpkg depmod xz; do
	command -v "$tool" >/dev/null 2>&1 || { echo "fetch-kernel: $tool missing (install apt, dpkg, kmod, xz-utils)" >&2; exit 1; }
done
pkg=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1)
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve linux-image-amd64 (run apt-get update)" >&2; exit 1; }
ver=${pkg#linux-image-}
mkdir -p "$dest"
work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
( cd "$work" && apt-get download "$pkg" >/dev/null 2>&1 ) ||
	( cd "$work" && apt-get download "$pkg" ) # second try shows the error
dpkg -x "$work"/"$pkg"_*.deb "$work/root"
depmod -b "$work/root" "$ver"
kernel="$work/root/boot/vmlinuz-$ver"
# extract-vmlinux: the bzImage payload is xz (CONFIG_KERNEL_XZ); find its
# magic and decompress to the ELF vmlinux. Trailing bytes make xz complain,
# so only the ELF magic of the result is checked.
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$kernel" | head -n1 | cut -d: -f1)
[ -n "$off" ] || { echo "fetch-kernel: no xz payload in $kernel" >&2; exit 1; }
tail -c +"$((off + 1))" "$kernel" | xz -dc 2>/dev/null >"$work/vmlinux" || true
[ "$(head -c4 "$work/vmlinux" | od -An -c | tr -d ' \n')" = '177ELF' ] ||
	{ echo "fetch-kernel: extracted payload of $kernel is not an ELF vmlinux" >&2; exit 1; }
rm -rf "$dest/root" "$dest/vmlinuz" "$dest/vmlinux"
mkdir -p "$dest/root/lib/modules"
mv "$work/root/lib/modules/$ver" "$dest/root/lib/modules/$ver"
mv "$kernel" "$dest/vmlinuz"
mv "$work/vmlinux" "$dest/vmlinux"
cp "$work/root/boot/config-$ver" "$dest/config"
echo "$ver" >"$dest/VERSION"
echo "fetch-kernel: $ver in $dest"
