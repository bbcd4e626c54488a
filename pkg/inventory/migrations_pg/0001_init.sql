-- 0001: the initial PostgreSQL schema. It mirrors the SQLite schema
-- (migrations/0001 and 0002): times are Unix nanoseconds in BIGINT, JSON
-- is TEXT, and names and addresses sort bytewise (COLLATE "C") as SQLite
-- sorts them.
CREATE TABLE machines (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name             TEXT COLLATE "C" NOT NULL UNIQUE,
    uuid             TEXT    NOT NULL DEFAULT '',
    serial           TEXT    NOT NULL DEFAULT '',
    state            TEXT    NOT NULL,
    state_reason     TEXT    NOT NULL DEFAULT '',
    ip               TEXT COLLATE "C" NOT NULL DEFAULT '',
    bmc_url          TEXT    NOT NULL DEFAULT '',
    bmc_sealed       BYTEA,
    power_state      TEXT    NOT NULL DEFAULT 'unknown',
    power_checked_at BIGINT  NOT NULL DEFAULT 0,
    hardware         TEXT    NOT NULL DEFAULT '',
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL
);
CREATE INDEX machines_state ON machines(state);
CREATE INDEX machines_uuid ON machines(lower(uuid));
-- Two metalds racing to reserve one address: the loser gets a unique
-- violation instead of a silent double reservation.
CREATE UNIQUE INDEX machines_ip ON machines(ip) WHERE ip <> '';

CREATE TABLE machine_macs (
    mac        TEXT    PRIMARY KEY,
    machine_id BIGINT  NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL
);
CREATE INDEX machine_macs_machine ON machine_macs(machine_id);

CREATE TABLE machine_tags (
    machine_id BIGINT NOT NULL REFERENCES machines(id) ON DELETE CASCADE,
    key        TEXT   NOT NULL,
    value      TEXT   NOT NULL,
    PRIMARY KEY (machine_id, key)
);
CREATE INDEX machine_tags_kv ON machine_tags(key, value);

CREATE TABLE events (
    id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time     BIGINT NOT NULL,
    machine  TEXT   NOT NULL DEFAULT '',
    mac      TEXT   NOT NULL DEFAULT '',
    type     TEXT   NOT NULL,
    message  TEXT   NOT NULL DEFAULT '',
    data     TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX events_machine ON events(machine, id);

CREATE TABLE tokens (
    id           TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    hash         BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0,
    revoked_at   BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE leases (
    mac        TEXT   PRIMARY KEY,
    ip         TEXT COLLATE "C" NOT NULL UNIQUE,
    hostname   TEXT   NOT NULL DEFAULT '',
    state      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE images (
    name         TEXT COLLATE "C" PRIMARY KEY,
    file         TEXT   NOT NULL,
    format       TEXT   NOT NULL,
    chain        TEXT   NOT NULL DEFAULT '',
    size         BIGINT NOT NULL,
    virtual_size BIGINT NOT NULL,
    sha256       TEXT   NOT NULL,
    raw_sha256   TEXT   NOT NULL,
    created_at   BIGINT NOT NULL
);

CREATE TABLE jobs (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    machine      TEXT   NOT NULL,
    kind         TEXT   NOT NULL,
    state        TEXT   NOT NULL,
    phase        TEXT   NOT NULL DEFAULT '',
    params       TEXT   NOT NULL DEFAULT '',
    progress     TEXT   NOT NULL DEFAULT '',
    error        TEXT   NOT NULL DEFAULT '',
    deadline     BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    token_hash   TEXT   NOT NULL DEFAULT '',
    token_sealed BYTEA,
    finished_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_machine ON jobs(machine, id);
CREATE INDEX jobs_state ON jobs(state);
CREATE INDEX jobs_token ON jobs(token_hash);
-- At most one running job per machine, whatever the metalds do.
CREATE UNIQUE INDEX jobs_one_running ON jobs(machine) WHERE state = 'running';
