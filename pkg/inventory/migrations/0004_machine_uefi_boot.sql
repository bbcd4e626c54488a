-- 0004: per machine, which UEFI network boot chain metald hands out
-- ('' = metald's --uefi-boot, 'ipxe', or 'shim': Secure Boot through
-- Debian's signed shim and GRUB).
ALTER TABLE machines ADD COLUMN uefi_boot TEXT NOT NULL DEFAULT '';
