-- The catalog tables: derived from data/flags.json and data/models.json, dropped and
-- recreated whenever the catalog digest (meta 'catalog_digest') changes.

DROP TABLE IF EXISTS flags;
DROP TABLE IF EXISTS flag_features;
DROP TABLE IF EXISTS flag_classes;
DROP TABLE IF EXISTS flag_sources;
DROP TABLE IF EXISTS features;
DROP TABLE IF EXISTS vendors;
DROP TABLE IF EXISTS models;
DROP TABLE IF EXISTS model_aliases;
DROP TABLE IF EXISTS model_features;
DROP TABLE IF EXISTS kvm_given;

CREATE TABLE flags (
    entry_id VARCHAR PRIMARY KEY,              -- location: cpuid:0x00000007.0.EBX.5, msr:0x10a.1, linux:pti
    kernel VARCHAR NOT NULL,                   -- what current kernels print ('' when hidden)
    legacy VARCHAR[] NOT NULL,                 -- other spellings printed by older kernels
    qemu VARCHAR NOT NULL,
    qemu_aliases VARCHAR[] NOT NULL,
    libvirt VARCHAR NOT NULL,
    location VARCHAR NOT NULL,
    class VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    description VARCHAR NOT NULL,
    kvm VARCHAR NOT NULL
);

-- Kernel flag (any spelling) -> the QEMU feature it shows, per vendor group ('any', 'intel', 'amd').
CREATE TABLE flag_features (
    flag VARCHAR NOT NULL,
    vendor VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    current BOOLEAN NOT NULL                   -- current kernels print this spelling
);

-- Kernel flag (current spelling) -> a QEMU feature that makes a guest kernel print it, any vendor.
CREATE TABLE flag_sources (
    flag VARCHAR NOT NULL,
    feature VARCHAR NOT NULL
);

CREATE TABLE flag_classes (
    flag VARCHAR PRIMARY KEY,
    class VARCHAR NOT NULL,
    reason VARCHAR NOT NULL
);

CREATE TABLE features (
    feature VARCHAR PRIMARY KEY,               -- QEMU name
    class VARCHAR NOT NULL,
    reason VARCHAR NOT NULL,
    libvirt VARCHAR NOT NULL,                  -- libvirt / Nova spelling
    kernel VARCHAR NOT NULL,                   -- kernel flag printed for it ('' when none)
    kvm VARCHAR NOT NULL,
    native_vendor VARCHAR NOT NULL,            -- 'any', 'intel' or 'amd'
    visible_intel BOOLEAN NOT NULL,            -- some flag lscpu prints on Intel hosts shows it
    visible_amd BOOLEAN NOT NULL,
    always BOOLEAN NOT NULL,                   -- KVM provides it whatever the host has
    in_qemu_7_2 BOOLEAN NOT NULL,              -- QEMU 7.2 accepts the name
    libvirt_since INTEGER                      -- first libvirt release naming it (90000 = 9.0.0), NULL: unknown
);

CREATE TABLE vendors (
    vendor VARCHAR PRIMARY KEY,                -- CPUID vendor string
    vendor_group VARCHAR NOT NULL              -- 'intel' or 'amd'
);

CREATE TABLE models (
    model VARCHAR PRIMARY KEY,                 -- versioned name
    family_name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    vendor VARCHAR NOT NULL,                   -- CPUID vendor string, or 'generic'
    family INTEGER NOT NULL,
    model_number INTEGER NOT NULL,
    stepping INTEGER NOT NULL,
    model_id VARCHAR NOT NULL,
    qemu_first VARCHAR,
    libvirt_first VARCHAR,
    libvirt_first_range VARCHAR NOT NULL,
    qemu_first_num INTEGER,                    -- 7.2.0 -> 70200, for comparisons in SQL
    libvirt_first_num INTEGER,                 -- first release known to have the versioned name
    origin VARCHAR NOT NULL,                   -- 'qemu' or 'proxmox'
    base VARCHAR,
    note VARCHAR NOT NULL,
    generic BOOLEAN NOT NULL,
    age INTEGER NOT NULL,                      -- 0 = oldest release
    has_lm BOOLEAN NOT NULL                    -- 64-bit model
);

CREATE TABLE model_aliases (
    alias VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    kind VARCHAR NOT NULL                      -- 'qemu' variant, 'plain' name, 'libvirt-9.0' name
);

CREATE TABLE model_features (
    model VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    required_by VARCHAR NOT NULL               -- 'qemu' model, or 'libvirt' / 'libvirt-9.0' definition
);

-- Features a host offers beyond its printed flags (data/kvm_given.yaml): a rule holds on hosts of
-- its vendor group that show all of its flags ('' for none).
CREATE TABLE kvm_given (
    rule INTEGER NOT NULL,
    vendor VARCHAR NOT NULL,
    flag VARCHAR NOT NULL,
    feature VARCHAR NOT NULL,
    kind VARCHAR NOT NULL                      -- 'emulated', 'kvm' or 'hidden'
);
