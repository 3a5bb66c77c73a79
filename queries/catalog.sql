-- name: insert-flags
-- store dictionary entries, one list per column
INSERT INTO flags
SELECT unnest($entry_id), unnest($kernel), unnest($legacy::VARCHAR[][]), unnest($qemu),
       unnest($qemu_aliases::VARCHAR[][]), unnest($libvirt), unnest($location), unnest($class),
       unnest($reason), unnest($description), unnest($kvm);

-- name: insert-flag-features
-- store the kernel flag -> QEMU feature mapping
INSERT INTO flag_features SELECT unnest($flag), unnest($vendor), unnest($feature), unnest($current);

-- name: insert-flag-sources
-- store which QEMU features make a guest kernel print each flag
INSERT INTO flag_sources SELECT unnest($flag), unnest($feature);

-- name: insert-flag-classes
-- store the class of every kernel flag spelling
INSERT INTO flag_classes SELECT unnest($flag), unnest($class), unnest($reason);

-- name: insert-features
-- store per-QEMU-feature facts
INSERT INTO features
SELECT unnest($feature), unnest($class), unnest($reason), unnest($libvirt), unnest($kernel), unnest($kvm),
       unnest($native_vendor), unnest($visible_intel), unnest($visible_amd), unnest($always),
       unnest($in_qemu_7_2), unnest($libvirt_since::INTEGER[]);

-- name: insert-kvm-given
-- store the features KVM gives beyond a host's own CPUID bits
INSERT INTO kvm_given SELECT unnest($rule), unnest($vendor), unnest($flag), unnest($feature), unnest($kind);

-- name: insert-vendors
-- store CPUID vendor string -> vendor group
INSERT INTO vendors SELECT unnest($vendor), unnest($vendor_group);

-- name: insert-models
-- store model versions
INSERT INTO models
SELECT unnest($model), unnest($family_name), unnest($version), unnest($vendor), unnest($family),
       unnest($model_number), unnest($stepping), unnest($model_id), unnest($qemu_first::VARCHAR[]),
       unnest($libvirt_first::VARCHAR[]), unnest($libvirt_first_range), unnest($qemu_first_num::INTEGER[]),
       unnest($libvirt_first_num::INTEGER[]), unnest($origin),
       unnest($base::VARCHAR[]), unnest($note), unnest($generic), unnest($age), unnest($has_lm);

-- name: insert-model-aliases
-- store model alias names
INSERT INTO model_aliases SELECT unnest($alias), unnest($model), unnest($kind);

-- name: insert-model-features
-- store the features each model version requires
INSERT INTO model_features SELECT unnest($model), unnest($feature), unnest($required_by);

-- name: catalog-version
-- the digest of the catalog loaded in this database
SELECT value FROM meta WHERE key = 'catalog_digest';

-- name: lookup-flag
-- every dictionary entry that has $name as a kernel, legacy, QEMU, QEMU alias or libvirt name
SELECT entry_id, kernel, legacy, qemu, qemu_aliases, libvirt, location, class, reason, description, kvm
FROM flags
WHERE kernel = $name OR list_contains(legacy, $name) OR qemu = $name
   OR list_contains(qemu_aliases, $name) OR libvirt = $name
ORDER BY (kernel = $name OR qemu = $name) DESC, entry_id;

-- name: flag-derivations
-- for a kernel flag: the QEMU feature it shows on each vendor group
SELECT vendor, feature FROM flag_features WHERE flag = $name ORDER BY vendor, feature;

-- name: feature-models
-- the model versions that contain a QEMU feature, oldest first
SELECT mf.model FROM model_features mf JOIN models m USING (model)
WHERE mf.feature = $feature AND mf.required_by = 'qemu'
ORDER BY m.age;

-- name: resolve-model
-- the versioned model a name stands for (itself, a QEMU variant alias, a plain name, a libvirt 9.0 name)
SELECT model FROM models WHERE lower(model) = lower($name)
UNION ALL
SELECT model FROM model_aliases WHERE lower(alias) = lower($name);

-- name: model-details
-- one model version's facts
SELECT model, family_name, version, vendor, family, model_number, stepping, model_id, qemu_first,
       libvirt_first, libvirt_first_range, origin, base, note, generic
FROM models WHERE model = $model;

-- name: model-aliases
-- the alias names of one model version
SELECT alias, kind FROM model_aliases WHERE model = $model ORDER BY kind, alias;

-- name: model-feature-names
-- one model's features in QEMU, libvirt and kernel spelling, with class
SELECT mf.feature, f.libvirt, f.kernel, f.class, mf.required_by
FROM model_features mf JOIN features f USING (feature)
WHERE mf.model = $model
ORDER BY mf.required_by DESC, mf.feature;

-- name: list-models
-- model versions for `catalog models`, optionally one vendor group and those a QEMU release offers
SELECT m.model, m.vendor, m.qemu_first, m.libvirt_first,
       (SELECT string_agg(alias, ' ' ORDER BY alias) FROM model_aliases a WHERE a.model = m.model AND a.kind <> 'libvirt-9.0') AS aliases,
       (SELECT count(*) FROM model_features mf WHERE mf.model = m.model AND mf.required_by = 'qemu') AS n_features
FROM models m
LEFT JOIN vendors v ON v.vendor = m.vendor
WHERE ($vendor IS NULL OR v.vendor_group = $vendor OR (m.generic AND $vendor IS NOT NULL))
ORDER BY m.family_name, m.version;

-- name: host-flag-classes
-- a host's kernel flags with their class ('unknown' for flags the dictionary lacks)
SELECT hf.flag, coalesce(fc.class, 'unknown') AS class, coalesce(fc.reason, 'not in the flag dictionary') AS reason
FROM host_flags hf LEFT JOIN flag_classes fc USING (flag)
WHERE hf.host = $host
ORDER BY class, hf.flag;

-- name: flag-class-of
-- the class of each kernel flag in $flags that the dictionary knows
SELECT flag, class FROM flag_classes WHERE flag IN (SELECT unnest($flags::VARCHAR[]));

-- name: flags-kvm-always
-- kernel flags of features KVM gives every guest whatever the host has (x2apic, tsc_deadline_timer)
SELECT DISTINCT ff.flag FROM flag_features ff JOIN features f USING (feature) WHERE f.always AND ff.current;

-- name: get-meta
-- one key/value fact about the database
SELECT value FROM meta WHERE key = $key;

-- name: all-host-names
-- every host name, real or reference (to re-point them all after a schema upgrade)
SELECT host FROM hosts;

-- name: set-meta
-- record a key/value fact about the database (schema version, catalog digest)
INSERT OR REPLACE INTO meta VALUES ($key, $value);

-- name: table-names
-- the tables of the open database, to recognise one cpudb wrote
SELECT table_name FROM duckdb_tables();

-- name: model-names
-- every model and alias name, to suggest close ones
SELECT model FROM models UNION SELECT alias FROM model_aliases;

-- name: model-qemu-features
-- the QEMU features of one model version, with their class
SELECT mf.feature, f.class FROM model_features mf JOIN features f USING (feature)
WHERE mf.model = $model AND mf.required_by = 'qemu';

-- name: feature-kernel-names
-- the kernel flag printed for each QEMU feature that has one
SELECT feature, kernel FROM features WHERE kernel <> '';
