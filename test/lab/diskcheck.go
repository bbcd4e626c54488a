package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
)

// TableMaskedSHA256 hashes the first n bytes of a disk or image file with
// the bytes a config drive rewrites zeroed: the MBR's partition entries
// (446–511) and, on a GPT disk, the primary header and entries (sectors
// 1–33) and the last 33 sectors of the n bytes (the image's backup GPT,
// left in place when the backup moves to the disk's end). A provisioned
// disk and its raw image then hash the same.
func TableMaskedSHA256(path string, n int64) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 34*512)
	if _, err := io.ReadFull(f, head); err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	gpt := false
	for i := range 4 {
		gpt = gpt || head[446+16*i+4] == 0xee
	}
	clear(head[446:512])
	if gpt {
		clear(head[512:])
	}
	h := sha256.New()
	h.Write(head)
	rest := n - int64(len(head))
	if gpt {
		rest -= 33 * 512
	}
	got, err := io.Copy(h, io.LimitReader(f, rest))
	if err != nil {
		return "", err
	}
	if got != rest {
		return "", fmt.Errorf("%s: shorter than %d bytes", path, n)
	}
	if gpt {
		h.Write(make([]byte, 33*512))
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// DiskHoldsImage checks that the first n bytes of disk are the raw image
// at raw, partition tables aside (TableMaskedSHA256).
func DiskHoldsImage(disk, raw string, n int64) error {
	want, err := TableMaskedSHA256(raw, n)
	if err != nil {
		return err
	}
	got, err := TableMaskedSHA256(disk, n)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("disk %s does not hold the image %s: the first %d bytes, partition tables masked, hash to %s, the image to %s", disk, raw, n, got, want)
	}
	return nil
}
