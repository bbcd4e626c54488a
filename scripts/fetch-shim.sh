#!/bin/sh
# fetch-shim.sh DESTDIR — fetch the Secure Boot network boot chain from
# Debian bookworm's signed packages without installing them:
#
#   shim-signed            /usr/lib/shim/shimx64.efi.signed
#                          (signed by Microsoft's UEFI CA)   → DESTDIR/shimx64.efi
#   grub-efi-amd64-signed  /usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed
#                          (signed by Debian, trusted by shim) → DESTDIR/grubx64.efi
#
# grubx64.efi is the name shim loads from the directory it was booted
# from. metald serves both under shim/ over TFTP (docs/netboot.md, "Secure
# Boot"). The package versions and the files' SHA-256 are pinned here and
# checked; to move to newer packages, set the versions, run the script
# with FETCH_SHIM_PRINT=1 (prints the new checksums instead of checking),
# paste them, and update the table in docs/netboot.md.
#
# Idempotent: nothing is downloaded when DESTDIR/VERSION matches.
set -eu
dest=${1:-.cache/shim}

shim_version='1.51~1+deb12u1+16.1-2~deb12u1'
grub_version='1+2.06+13+deb12u2'
shim_sha256='0fc347af103ec1dfac6e3f184c0a5241a2ce756a0932b359c404d39c45423806'
grub_sha256='a376f239f40fc54aa63e343f3d2ab254c4a1ebcaec1a3fe5de0497aa640362d9'
want="shim-signed $shim_version grub-efi-amd64-signed $grub_version"

check() { # FILE SHA256
	got=$(sha256sum "$1" | cut -d' ' -f1)
	if [ "${FETCH_SHIM_PRINT:-}" = 1 ]; then
		echo "fetch-shim: $1 sha256 $got"
		return 0
	fi
	[ "$got" = "$2" ] || { echo "fetch-shim: $1: sha256 $got, want $2" >&2; return 1; }
}

if [ -s "$dest/VERSION" ] && [ "$(cat "$dest/VERSION")" = "$want" ] &&
	check "$dest/shimx64.efi" "$shim_sha256" 2>/dev/null && check "$dest/grubx64.efi" "$grub_sha256" 2>/dev/null; then
	echo "fetch-shim: $want already in $dest"
	exit 0
fi
for tool in apt-get dpkg-deb sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || { echo "fetch-shim: $tool missing (install apt, dpkg, coreutils)" >&2; exit 1; }
done
mkdir -p "$dest"
work=$(mktemp -d "$dest/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work" # apt's _apt user downloads into it
for p in "shim-signed=$shim_version" "grub-efi-amd64-signed=$grub_version"; do
	( cd "$work" && apt-get download "$p" >/dev/null 2>&1 ) ||
		( cd "$work" && apt-get download "$p" ) || # second try shows the error
		{ echo "fetch-shim: cannot download $p (run apt-get update; if the mirror dropped this version, update the pins in $0)" >&2; exit 1; }
done
dpkg-deb -x "$work"/shim-signed_*.deb "$work/root"
dpkg-deb -x "$work"/grub-efi-amd64-signed_*.deb "$work/root"
check "$work/root/usr/lib/shim/shimx64.efi.signed" "$shim_sha256"
check "$work/root/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$grub_sha256"
mv "$work/root/usr/lib/shim/shimx64.efi.signed" "$dest/shimx64.efi"
mv "$work/root/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$dest/grubx64.efi"
echo "$want" >"$dest/VERSION"
echo "fetch-shim: $want in $dest"
