#!/usr/bin/env bash
# Imaging benchmark: metal's streaming converter (internal/imagecli, the
# code behind `metalctl image convert` and metal-agent) against
# `qemu-img convert -O raw` on the same inputs, same filesystem, same run.
#
#   bench/imaging/run.sh            # 2 GiB ext4 disk, best of 2 runs
#   RUNS=3 BENCH_DIR=/var/tmp/x bench/imaging/run.sh
#
# Needs: go, qemu-img (qemu-utils), mkfs.ext4 (e2fsprogs), zstd, GNU time
# (Debian package `time`). No root, no loop devices, no mounts. Prints a
# markdown table (also left in $BENCH_DIR/results.md). Not part of `make
# test`.
set -euo pipefail

RUNS=${RUNS:-2}
BENCH_DIR=${BENCH_DIR:-/tmp/metal-bench-imaging}
DISK_SIZE=${DISK_SIZE:-2G}
FILL_MIB=${FILL_MIB:-768}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)

for tool in go qemu-img mkfs.ext4 zstd /usr/bin/time cmp; do
	command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install qemu-utils e2fsprogs zstd time)" >&2; exit 1; }
done

mkdir -p "$BENCH_DIR"
cd "$BENCH_DIR"
echo "# building the converter" >&2
(cd "$ROOT" && go build -o "$BENCH_DIR/metal-convert" ./bench/imaging/convert)

if [[ ! -s disk.raw ]]; then
	echo "# populating ~${FILL_MIB} MiB of files from /usr" >&2
	rm -rf fill && mkdir fill
	# Real files (libraries, docs, locales): a realistic mix of compressible
	# and incompressible content, copied up to the budget.
	find /usr/lib /usr/share /usr/bin -xdev -type f -size +1k -printf '%s %p\n' 2>/dev/null > all.list || true
	awk -v max=$((FILL_MIB << 20)) '{ if (sum + $1 > max) exit; sum += $1; sub(/^[0-9]+ /, ""); print }' all.list > fill.list
	tar -cf - -T fill.list 2>/dev/null | tar -xf - -C fill
	echo "# mkfs.ext4 -d into a ${DISK_SIZE} raw disk" >&2
	truncate -s "$DISK_SIZE" disk.raw.tmp
	mkfs.ext4 -q -F -d fill -L metalbench disk.raw.tmp
	mv disk.raw.tmp disk.raw
	rm -rf fill fill.list all.list
fi

echo "# making the inputs with qemu-img and zstd" >&2
[[ -s disk.vmdk ]] || qemu-img convert -f raw -O vmdk -o subformat=streamOptimized disk.raw disk.vmdk
[[ -s disk.vhd ]] || qemu-img convert -f raw -O vpc -o force_size=on disk.raw disk.vhd
[[ -s disk.vhdx ]] || qemu-img convert -f raw -O vhdx disk.raw disk.vhdx
[[ -s disk.qcow2 ]] || qemu-img convert -f raw -O qcow2 -c disk.raw disk.qcow2
[[ -s disk.raw.zst ]] || zstd -q -T0 -3 -c disk.raw > disk.raw.zst

# measure CMD... -> "seconds peakKiB cpuSeconds" of the fastest of $RUNS runs.
measure() {
	local best="" line
	for ((i = 0; i < RUNS; i++)); do
		rm -f out.raw
		line=$(/usr/bin/time -f '%e %M %U %S' -o time.out "$@" >/dev/null 2>err.out && awk '{ printf "%s %s %.2f\n", $1, $2, $3 + $4 }' time.out) ||
			{ echo "FAILED: $*" >&2; cat err.out >&2; exit 1; }
		if [[ -z $best ]] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN { exit !(a < b) }'; then
			best=$line
		fi
	done
	echo "$best"
}

# measure_keep CMD... -> "seconds peakKiB" of one run, keeping out.raw.
measure_keep() {
	/usr/bin/time -f '%e %M' -o time.out "$@" >/dev/null 2>err.out || { cat err.out >&2; exit 1; }
	cat time.out
}

du_mib() { du -m --apparent-size "$1" | cut -f1; }
used=$(du -m disk.raw | cut -f1)

rows=()
for input in disk.vmdk disk.vhd disk.vhdx disk.qcow2 disk.raw.zst; do
	echo "# $input" >&2
	case $input in
	*.zst)
		# qemu-img cannot read zstd; the anchor is zstd itself (plus sync,
		# as metal fsyncs its output).
		anchor_name="zstd -d --sparse && sync out.raw"
		q=$(measure sh -c "zstd -q -d -f --sparse -o out.raw $input && sync out.raw");;
	*)
		# -t writeback: qemu-img flushes the output at the end, as metal
		# does (qemu-img convert's default cache mode never fsyncs).
		anchor_name="qemu-img convert -t writeback -O raw"
		q=$(measure qemu-img convert -t writeback -O raw "$input" out.raw);;
	esac
	# metal prints the chunk digest (the disk read back on every core,
	# holes not read); with --sha256 also the SHA-256 of the whole raw
	# disk, whose anchor is a sha256sum over qemu-img's output.
	h=$(RUNS=1 measure_keep sha256sum out.raw)
	cp --sparse=always out.raw ref.raw
	m=$(measure ./metal-convert "$input" out.raw)
	cmp -s out.raw ref.raw || { echo "MISMATCH: $input differs from $anchor_name" >&2; exit 1; }
	n=$(measure ./metal-convert --sha256 "$input" out.raw)
	cmp -s out.raw ref.raw || { echo "MISMATCH: $input with --sha256" >&2; exit 1; }
	p=$(measure sh -c "cat $input | ./metal-convert - out.raw")
	cmp -s out.raw ref.raw || { echo "MISMATCH: $input from a pipe" >&2; exit 1; }
	rows+=("$(awk -v name="$input" -v sz="$(du_mib "$input")" -v an="$anchor_name" -v q="$q" -v m="$m" -v p="$p" -v h="$h" -v n="$n" 'BEGIN {
		split(q, Q, " "); split(m, M, " "); split(p, P, " "); split(h, H, " "); split(n, N, " ");
		printf "| %s | %d | %s | %.2f (%.2f) | %.2f (%.2f) | **%.2f×** | %.2f | %.2f (%.2f) | %.2f× | %.2f | %.0f | %.0f |", name, sz, an, Q[1], Q[3], M[1], M[3], M[1] / Q[1], Q[1] + H[1], N[1], N[3], N[1] / (Q[1] + H[1]), P[1], Q[2] / 1024, M[2] / 1024 }')")
	rm -f ref.raw out.raw
done

{
	echo "Input: ${DISK_SIZE} raw disk, ext4 made by \`mkfs.ext4 -d\` from files out of /usr, ${used} MiB allocated (the rest never written); converted by qemu-img $(qemu-img --version | head -1 | awk '{print $3}') into each format. Best of ${RUNS} runs; output to a regular file on the same filesystem, fsynced by both sides; input in the page cache; every output compared byte for byte with the anchor's. The machine is shared with other jobs, so absolute times are noisy. $(nproc) vCPU, $(date -u +%Y-%m-%d)."
	echo
	echo "| input | input MiB | anchor | anchor s (CPU s) | metal, chunk digest s (CPU s) | metal ÷ anchor | anchor + sha256sum s | metal --sha256 s (CPU s) | metal --sha256 ÷ (anchor + sha256sum) | metal from a pipe s | anchor peak RSS MiB | metal peak RSS MiB |"
	echo "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	printf '%s\n' "${rows[@]}"
} | tee results.md
