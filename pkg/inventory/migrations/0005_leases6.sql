-- 0005: DHCPv6 leases (issue 14 part 2), one per MAC beside its DHCPv4
-- lease: a machine holds both on a dual-stack network.
CREATE TABLE leases6 (
    mac        TEXT    PRIMARY KEY,
    ip         TEXT    NOT NULL UNIQUE,
    hostname   TEXT    NOT NULL DEFAULT '',
    state      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
