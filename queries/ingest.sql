-- name: known-snapshots
-- (host, sha256) of every snapshot already ingested, to skip files seen before
SELECT host, sha256 FROM dumps;

-- name: known-flagsets
-- digest → id of every stored flag set
SELECT digest, flagset_id FROM flagsets;

-- name: next-ids
-- the next free dump and flag set ids
SELECT coalesce((SELECT max(dump_id) FROM dumps), 0) + 1,
       coalesce((SELECT max(flagset_id) FROM flagsets), 0) + 1;

-- name: insert-flagsets
-- store new flag sets: parallel lists of ids, digests and sizes
INSERT INTO flagsets
SELECT unnest($ids), unnest($digests), unnest($sizes);

-- name: insert-flagset-flags
-- store the flags of new flag sets: parallel lists of flag set ids and flags
INSERT INTO flagset_flags
SELECT unnest($ids), unnest($flags);

-- name: insert-dumps
-- store new snapshots: per snapshot only what is its own (id, host, file, time, profile), and
-- each distinct profile (every other column; hosts of one CPU model share it) once
INSERT INTO dumps (dump_id, host, kind, sha256, source_path, source_format, ingested_at, collected_at,
                   kernel, vendor, model_name, family, model, stepping, microcode, sockets,
                   cores_per_socket, threads_per_core, hypervisor_vendor, is_guest, flagset_id,
                   guest_flagset_id, guest_source, notes, qemu_version, libvirt_version, nova_version)
WITH own AS (
    SELECT unnest($dump_id) AS dump_id, unnest($host) AS host, unnest($sha256) AS sha256,
           unnest($source_path) AS source_path, unnest($collected_at)::TIMESTAMPTZ AS collected_at,
           unnest($profile) AS profile
),
profiles AS (
    SELECT unnest(range(len($source_format))) AS profile,
           unnest($source_format) AS source_format, unnest($kernel) AS kernel, unnest($vendor) AS vendor,
           unnest($model_name) AS model_name, unnest($family) AS family, unnest($model) AS model,
           unnest($stepping) AS stepping, unnest($microcode) AS microcode, unnest($sockets) AS sockets,
           unnest($cores_per_socket) AS cores_per_socket, unnest($threads_per_core) AS threads_per_core,
           unnest($hypervisor_vendor) AS hypervisor_vendor, unnest($is_guest) AS is_guest,
           unnest($flagset_id) AS flagset_id, unnest($guest_flagset_id) AS guest_flagset_id,
           unnest($guest_source) AS guest_source, unnest($notes) AS notes,
           unnest($qemu_version) AS qemu_version, unnest($libvirt_version) AS libvirt_version,
           unnest($nova_version) AS nova_version
)
SELECT o.dump_id, o.host, $kind, o.sha256, o.source_path, p.source_format, $ingested_at::TIMESTAMPTZ,
       o.collected_at, p.kernel, p.vendor, p.model_name, p.family, p.model, p.stepping, p.microcode,
       p.sockets, p.cores_per_socket, p.threads_per_core, p.hypervisor_vendor, p.is_guest, p.flagset_id,
       p.guest_flagset_id, p.guest_source, p.notes, p.qemu_version, p.libvirt_version, p.nova_version
FROM own o JOIN profiles p USING (profile)
ORDER BY o.dump_id;

-- name: insert-dump-lines
-- store the extra lines (vmx flags, bugs, vulnerabilities) of new snapshots: each profile's lines
-- once, repeated for every snapshot of that profile
INSERT INTO dump_lines
WITH own AS (SELECT unnest($dump_id) AS dump_id, unnest($profile) AS profile),
lines AS (SELECT unnest($line_profile) AS profile, unnest($kind) AS kind, unnest($name) AS name,
                 unnest($value) AS value, unnest(range(len($kind))) AS seq)
SELECT o.dump_id, l.kind, l.name, l.value FROM own o JOIN lines l USING (profile)
ORDER BY o.dump_id, l.seq;

-- name: refresh-hosts
-- point every host at its latest snapshot with kernel flags (a domcapabilities-only dump counts
-- only when the host has nothing else), and at the guest view to use: the newest one taken at
-- most an hour before that snapshot (older views may predate a microcode or BIOS change)
INSERT OR REPLACE INTO hosts (host, dump_id, kind, guest_dump_id)
WITH snapshots AS (
    SELECT host, dump_id, kind, guest_flagset_id, coalesce(collected_at, ingested_at) AS taken,
           source_format <> 'virsh-domcapabilities' AS has_kernel_flags
    FROM dumps
    WHERE host IN (SELECT unnest($hosts))
),
latest AS (
    SELECT host, arg_max(dump_id, (has_kernel_flags, taken, dump_id)) AS dump_id,
           arg_max(taken, (has_kernel_flags, taken, dump_id)) AS taken, any_value(kind) AS kind
    FROM snapshots GROUP BY host
)
SELECT l.host, l.dump_id, l.kind,
       (SELECT arg_max(s.dump_id, (s.dump_id = l.dump_id, s.taken, s.dump_id))
        FROM snapshots s
        WHERE s.host = l.host AND s.guest_flagset_id IS NOT NULL
          AND s.taken >= l.taken - INTERVAL 1 HOUR)
FROM latest l;

-- name: delete-references
-- remove the reference CPUs (hosts of kind 'reference') before the current ones are stored
DELETE FROM dump_lines WHERE dump_id IN (SELECT dump_id FROM dumps WHERE kind = 'reference');
DELETE FROM hosts WHERE kind = 'reference';
DELETE FROM dumps WHERE kind = 'reference';
