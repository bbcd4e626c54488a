-- 0001: the initial schema.
CREATE TABLE machines (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    uuid             TEXT    NOT NULL DEFAULT '',
    serial           TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL,
    state_reason     TEXT    NOT NULL DEFAULT '',
    ip               TEXT    NOT NULL DEFAULT '',
    bmc_url          TEXT    NOT NULL DEFAULT '',
    bmc_sealed       BLOB,
    power_state      TEXT    NOT NULL DEFAULT 'unknown',
    power_checked_at INTEGER NOT NULL DEFAULT 0,
    hardware         TEXT    NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX machines_state ON machines(state);

CREATE TABLE machine_macs (
    mac        TEXT    PRIMARY KEY,
    machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL
);
CREATE INDEX machine_macs_machine ON machine_macs(machine_id);

CREATE TABLE machine_tags (
    machine_id INTEGER NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    key        TEXT    NOT NULL,
    value      TEXT    NOT NULL,
    PRIMARY KEY (machine_id, key)
);
CREATE INDEX machine_tags_kv ON machine_tags(key, value);

CREATE TABLE events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    time     INTEGER NOT NULL,
    machine  TEXT    NOT NULL DEFAULT '',
    mac      TEXT    NOT NULL DEFAULT '',
    type     TEXT    NOT NULL,
    message  TEXT    NOT NULL DEFAULT '',
    data     TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_machine ON events(machine, id);

CREATE TABLE tokens (
    id           TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL,
    hash         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE leases (
    mac        TEXT    PRIMARY KEY,
    ip         TEXT    NOT NULL UNIQUE,
    hostname   TEXT    NOT NULL DEFAULT '',
    state      TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE images (
    name         TEXT    PRIMARY KEY,
    file         TEXT    NOT NULL,
    format       TEXT    NOT NULL,
    chain        TEXT    NOT NULL DEFAULT '',
    size         INTEGER NOT NULL,
    virtual_size INTEGER NOT NULL,
    sha256       TEXT    NOT NULL,
    raw_sha256   TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    machine    TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    phase      TEXT    NOT NULL DEFAULT '',
    params     TEXT    NOT NULL DEFAULT '',
    progress   TEXT    NOT NULL DEFAULT '',
    error      TEXT    NOT NULL DEFAULT '',
    deadline   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_machine ON jobs(machine, id);
CREATE INDEX jobs_state ON jobs(state);
