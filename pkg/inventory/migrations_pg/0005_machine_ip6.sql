-- 0005: a machine's reserved IPv6 address (issue 14), which metald's
-- DHCPv6 server hands its MACs in full mode, beside the IPv4 one in ip.
-- Unique like ip: two metalds sharing this database race for it.
ALTER TABLE machines ADD COLUMN ip6 TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE UNIQUE INDEX machines_ip6 ON machines(ip6) WHERE ip6 <> '';
