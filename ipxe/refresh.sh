#!/bin/sh
# Refresh the embedded iPXE binaries from the installed Debian ipxe package
# and print the values to paste into README.md. Run from the repository root.
set -eu
dpkg-query -W -f='ipxe ${Version}\n' ipxe
cp /usr/lib/ipxe/undionly.kpxe ipxe/undionly.kpxe
cp /usr/lib/ipxe/snponly.efi ipxe/snponly.efi
cp "$(readlink -f /usr/lib/ipxe/ipxe.efi)" ipxe/ipxe.efi
cd ipxe && sha256sum undionly.kpxe snponly.efi ipxe.efi && ls -l undionly.kpxe snponly.efi ipxe.efi
