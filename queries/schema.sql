-- cpudb database schema. Executed as one script when a database is created or its
-- schema version is older; every statement is idempotent.

CREATE TABLE IF NOT EXISTS meta (
    key VARCHAR PRIMARY KEY,
    value VARCHAR NOT NULL
);

-- One row per distinct set of kernel flags. Fleets have far fewer flag sets than
-- hosts, and every set computation runs on these.
CREATE TABLE IF NOT EXISTS flagsets (
    flagset_id INTEGER PRIMARY KEY,
    digest VARCHAR NOT NULL UNIQUE,
    n_flags INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS flagset_flags (
    flagset_id INTEGER NOT NULL,
    flag VARCHAR NOT NULL
);

-- One row per ingested snapshot of a host. A host is re-ingested as a new snapshot;
-- the same file ingested twice is recognised by (host, sha256).
CREATE TABLE IF NOT EXISTS dumps (
    dump_id INTEGER PRIMARY KEY,
    host VARCHAR NOT NULL,
    kind VARCHAR NOT NULL DEFAULT 'host',      -- 'host' or 'reference'
    sha256 VARCHAR NOT NULL,
    source_path VARCHAR NOT NULL,
    source_format VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    collected_at TIMESTAMPTZ,
    kernel VARCHAR,
    vendor VARCHAR,
    model_name VARCHAR,
    family INTEGER,
    model INTEGER,
    stepping INTEGER,
    microcode VARCHAR,
    sockets INTEGER,
    cores_per_socket INTEGER,
    threads_per_core INTEGER,
    hypervisor_vendor VARCHAR,
    is_guest BOOLEAN NOT NULL,
    flagset_id INTEGER NOT NULL,
    guest_flagset_id INTEGER,                  -- the guest view: QEMU features from libvirt or raw CPUID
    notes VARCHAR
);
-- schema 2: where the guest view came from (virsh domcapabilities, cpuid -r, ...)
ALTER TABLE dumps ADD COLUMN IF NOT EXISTS guest_source VARCHAR;
-- schema 3: the virtualization stack cpudb collect found on the host
ALTER TABLE dumps ADD COLUMN IF NOT EXISTS qemu_version VARCHAR;
ALTER TABLE dumps ADD COLUMN IF NOT EXISTS libvirt_version VARCHAR;
ALTER TABLE dumps ADD COLUMN IF NOT EXISTS nova_version VARCHAR;

-- Lines kept beside the flags: vmx flags, bugs, vulnerabilities, power management.
CREATE TABLE IF NOT EXISTS dump_lines (
    dump_id INTEGER NOT NULL,
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    value VARCHAR NOT NULL
);

-- The latest snapshot of every host name (for its kernel flags), and the snapshot whose guest
-- view the baseline uses: the same one, or a separate domcapabilities dump not older than it.
CREATE TABLE IF NOT EXISTS hosts (
    host VARCHAR PRIMARY KEY,
    dump_id INTEGER NOT NULL,
    kind VARCHAR NOT NULL DEFAULT 'host'
);
ALTER TABLE hosts ADD COLUMN IF NOT EXISTS guest_dump_id INTEGER;

CREATE OR REPLACE VIEW host_flags AS
    SELECT h.host, ff.flag
    FROM hosts h
    JOIN dumps d USING (dump_id)
    JOIN flagset_flags ff ON ff.flagset_id = d.flagset_id;
