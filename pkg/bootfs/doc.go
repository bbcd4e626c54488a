// Package bootfs serves boot files read-only: the embedded iPXE binaries
// and an optional operator directory, over TFTP (pin/tftp/v3, with
// blksize, tsize, timeout and windowsize negotiation, a transfer cap and
// counters) and over HTTP with Range. Every name goes through CleanPath,
// which refuses anything that could leave the root. It knows files, not
// machines or boot policy (pkg/pxe decides what a client boots).
package bootfs
