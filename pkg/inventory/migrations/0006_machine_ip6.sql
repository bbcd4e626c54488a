-- 0006: a machine's reserved IPv6 address (issue 14), which metald's
-- DHCPv6 server hands its MACs in full mode, beside the IPv4 one in ip.
ALTER TABLE machines ADD COLUMN ip6 TEXT NOT NULL DEFAULT '';
