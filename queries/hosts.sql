-- name: host-names
-- every real host name (not reference CPUs), in name order
SELECT host FROM hosts WHERE kind = 'host' ORDER BY host;

-- name: reference-names
-- every reference CPU loaded as a host of kind 'reference'
SELECT host FROM hosts WHERE kind = 'reference' ORDER BY host;

-- name: select-hosts
-- make the temp table `selected` hold the named hosts, each counting once
CREATE OR REPLACE TEMP TABLE selected AS
SELECT host, dump_id, 1 AS weight, guest_dump_id
FROM hosts
WHERE host IN (SELECT unnest($hosts::VARCHAR[]));

-- name: select-all-hosts
-- make the temp table `selected` hold every real host, each counting once
CREATE OR REPLACE TEMP TABLE selected AS
SELECT host, dump_id, 1 AS weight, guest_dump_id FROM hosts WHERE kind = 'host';

-- name: select-references
-- add reference CPUs to `selected`, each standing for $weights planned hosts
INSERT INTO selected
SELECT h.host, h.dump_id, r.weight, h.guest_dump_id
FROM hosts h
JOIN (SELECT unnest($refs::VARCHAR[]) AS host, unnest($weights::INTEGER[]) AS weight) r USING (host);

-- name: selected-hosts
-- one row per selected host with its latest snapshot's facts
WITH history AS (
    SELECT host, count(*) AS snapshots FROM dumps WHERE host IN (SELECT host FROM selected) GROUP BY host
)
SELECT s.host, s.weight, d.kind, d.vendor, d.model_name, d.family, d.model, d.stepping, d.microcode,
       fs.n_flags, coalesce(d.collected_at, d.ingested_at) AS snapshot_at, d.is_guest,
       d.hypervisor_vendor, d.source_format, d.kernel, d.sha256, d.source_path, d.flagset_id,
       d.notes, h.snapshots, g.guest_source, g.source_path AS guest_path, d.collected_at
FROM selected s
JOIN dumps d USING (dump_id)
JOIN flagsets fs USING (flagset_id)
JOIN history h ON h.host = s.host
LEFT JOIN dumps g ON g.dump_id = s.guest_dump_id
ORDER BY s.host;

-- name: selection-flag-counts
-- every flag some selected host has, with how many hosts (planned counts included) have it
WITH sets AS (
    SELECT d.flagset_id, sum(s.weight) AS hosts
    FROM selected s JOIN dumps d USING (dump_id)
    GROUP BY d.flagset_id
)
SELECT ff.flag, sum(sets.hosts)::BIGINT AS hosts,
       (SELECT sum(weight) FROM selected)::BIGINT AS total
FROM sets JOIN flagset_flags ff USING (flagset_id)
GROUP BY ff.flag
ORDER BY ff.flag;

-- name: selected-flags-by-host
-- the flags some but not all selected hosts have, with the names of the hosts that have each
WITH counts AS (
    SELECT ff.flag, count(*) AS n
    FROM selected s JOIN dumps d USING (dump_id) JOIN flagset_flags ff USING (flagset_id)
    GROUP BY ff.flag
)
SELECT c.flag, list(s.host ORDER BY s.host) AS hosts
FROM counts c
JOIN flagset_flags ff ON ff.flag = c.flag
JOIN dumps d ON d.flagset_id = ff.flagset_id
JOIN selected s ON s.dump_id = d.dump_id
WHERE c.n < (SELECT count(*) FROM selected)
GROUP BY c.flag
ORDER BY c.flag;

-- name: host-flags
-- the kernel flags of one host's latest snapshot
SELECT ff.flag
FROM hosts h JOIN dumps d USING (dump_id) JOIN flagset_flags ff USING (flagset_id)
WHERE h.host = $host
ORDER BY ff.flag;

-- name: selected-cpu-flagsets
-- per CPU model name and stepping, each distinct flag set among selected bare-metal hosts with
-- its hosts (dumps taken inside guests differ from their hardware by nature, and are reported apart)
WITH groups AS (
    SELECT coalesce(d.model_name, 'unknown CPU') AS cpu, d.stepping, d.flagset_id, list(s.host ORDER BY s.host) AS hosts
    FROM selected s JOIN dumps d USING (dump_id)
    WHERE d.kind = 'host' AND NOT d.is_guest
    GROUP BY ALL
)
SELECT g.cpu, g.stepping, g.hosts, (SELECT list(flag) FROM flagset_flags ff WHERE ff.flagset_id = g.flagset_id)
FROM groups g;

-- name: selected-flag-holders
-- which of $flags the selected hosts show, how many hosts show any, and the first 8 of them by name
WITH hits AS (
    SELECT DISTINCT ff.flagset_id, ff.flag
    FROM (SELECT DISTINCT d.flagset_id FROM selected s JOIN dumps d USING (dump_id)) sets
    JOIN flagset_flags ff USING (flagset_id)
    WHERE ff.flag IN (SELECT unnest($flags::VARCHAR[]))
),
holders AS (
    SELECT s.host FROM selected s JOIN dumps d USING (dump_id)
    WHERE d.flagset_id IN (SELECT flagset_id FROM hits)
)
SELECT (SELECT list(DISTINCT flag ORDER BY flag) FROM hits),
       (SELECT count(*) FROM holders),
       (SELECT list(host ORDER BY host)[1:8] FROM holders);

-- name: selected-pool
-- the whole selection in one row: planned host count, vendors, host names, hosts without a vendor,
-- dumps taken inside guests, and the reference CPUs with the host count each stands for
SELECT sum(s.weight)::BIGINT,
       list_sort(list(DISTINCT coalesce(d.vendor, 'unknown'))),
       list(s.host ORDER BY s.host),
       list(s.host ORDER BY s.host) FILTER (WHERE d.vendor IS NULL),
       list(s.host ORDER BY s.host) FILTER (WHERE d.is_guest AND d.kind = 'host'),
       list(s.host ORDER BY s.host) FILTER (WHERE d.kind = 'reference'),
       list(s.weight ORDER BY s.host) FILTER (WHERE d.kind = 'reference')
FROM selected s JOIN dumps d USING (dump_id);

-- name: selected-unknown-flags
-- flags of selected hosts that the dictionary does not know, with the hosts that have them
SELECT ff.flag, count(*), list(s.host ORDER BY s.host)[1:8]
FROM selected s JOIN dumps d USING (dump_id) JOIN flagset_flags ff USING (flagset_id)
LEFT JOIN flag_classes fc USING (flag)
WHERE fc.flag IS NULL
GROUP BY ff.flag
ORDER BY ff.flag;

-- name: selected-notes
-- parser notes (processor blocks that differ, inferred vendors) of the selected hosts, each with how
-- many hosts have it and the first 8 of them by name
SELECT note, count(*), list(host ORDER BY host)[1:8]
FROM (SELECT s.host, unnest(string_split(d.notes, '; ')) AS note
      FROM selected s JOIN dumps d USING (dump_id)
      WHERE d.notes IS NOT NULL)
GROUP BY note
ORDER BY min(host), note;

-- name: selected-stack
-- the distinct QEMU, libvirt and Nova versions collected on the selected hosts, each with the first
-- host (by name) that has it
WITH versions AS (
    SELECT d.qemu_version, d.libvirt_version, d.nova_version, min(s.host) AS host
    FROM selected s JOIN dumps d USING (dump_id)
    WHERE d.qemu_version IS NOT NULL OR d.libvirt_version IS NOT NULL OR d.nova_version IS NOT NULL
    GROUP BY ALL
)
SELECT component, version, min(host)
FROM (SELECT host, unnest(['qemu', 'libvirt', 'nova']) AS component,
             unnest([qemu_version, libvirt_version, nova_version]) AS version
      FROM versions)
WHERE version IS NOT NULL
GROUP BY component, version
ORDER BY component, version;

-- name: selected-kernels
-- the kernel release of each host in $hosts, where its dump says
SELECT s.host, d.kernel FROM selected s JOIN dumps d USING (dump_id)
WHERE s.host IN (SELECT unnest($hosts::VARCHAR[])) AND d.kernel IS NOT NULL;
