-- Drift: how the selected hosts changed between their snapshots.

-- name: drift
-- consecutive snapshots (with kernel flags) of the selected hosts whose flags, microcode or kernel
-- changed, newest last, with the flags added and removed and the removed guest-settable ones;
-- only changes whose later snapshot was taken at or after $since (when given)
WITH snaps AS (
    SELECT d.host, d.dump_id, d.flagset_id, d.microcode, d.kernel, d.source_path,
           coalesce(d.collected_at, d.ingested_at) AS taken,
           lag(d.flagset_id) OVER w AS prev_flagset,
           lag(d.microcode) OVER w AS prev_microcode,
           lag(d.kernel) OVER w AS prev_kernel,
           lag(coalesce(d.collected_at, d.ingested_at)) OVER w AS prev_taken,
           lag(d.source_path) OVER w AS prev_path,
           lag(d.dump_id) OVER w AS prev_dump
    FROM dumps d
    WHERE d.kind = 'host' AND d.source_format <> 'virsh-domcapabilities'
      AND d.host IN (SELECT host FROM selected)
    WINDOW w AS (PARTITION BY d.host ORDER BY coalesce(d.collected_at, d.ingested_at), d.dump_id)
),
changes AS (
    SELECT * FROM snaps
    WHERE prev_dump IS NOT NULL
      AND (flagset_id <> prev_flagset OR microcode IS DISTINCT FROM prev_microcode
           OR kernel IS DISTINCT FROM prev_kernel)
      AND ($since IS NULL OR taken >= $since::TIMESTAMPTZ)
),
pairs AS (
    SELECT DISTINCT prev_flagset AS a, flagset_id AS b FROM changes WHERE flagset_id <> prev_flagset
),
added AS (
    SELECT p.a, p.b, list(fb.flag ORDER BY fb.flag) AS flags
    FROM pairs p
    JOIN flagset_flags fb ON fb.flagset_id = p.b
    ANTI JOIN flagset_flags fa ON fa.flagset_id = p.a AND fa.flag = fb.flag
    GROUP BY p.a, p.b
),
removed AS (
    SELECT p.a, p.b, list(fa.flag ORDER BY fa.flag) AS flags,
           list(fa.flag ORDER BY fa.flag) FILTER (WHERE fc.class = 'guest') AS guest_flags
    FROM pairs p
    JOIN flagset_flags fa ON fa.flagset_id = p.a
    ANTI JOIN flagset_flags fb ON fb.flagset_id = p.b AND fb.flag = fa.flag
    LEFT JOIN flag_classes fc ON fc.flag = fa.flag
    GROUP BY p.a, p.b
)
SELECT c.host, c.prev_taken, c.taken, c.prev_microcode, c.microcode, c.prev_kernel, c.kernel,
       coalesce(ad.flags, []) AS added, coalesce(rm.flags, []) AS removed,
       coalesce(rm.guest_flags, []) AS removed_guest, c.prev_path, c.source_path
FROM changes c
LEFT JOIN added ad ON ad.a = c.prev_flagset AND ad.b = c.flagset_id
LEFT JOIN removed rm ON rm.a = c.prev_flagset AND rm.b = c.flagset_id
ORDER BY c.host, c.taken;

-- name: snapshot-counts
-- how many snapshots with kernel flags each selected host has
SELECT count(*) FILTER (WHERE n > 1), count(*)
FROM (SELECT host, count(*) AS n FROM dumps
      WHERE kind = 'host' AND source_format <> 'virsh-domcapabilities' AND host IN (SELECT host FROM selected)
      GROUP BY host);

-- name: features-of-flags
-- the QEMU features each of $flags stands for (any spelling, any vendor): a flag removed and
-- another added for one feature is a rename, not a loss
SELECT DISTINCT flag, feature FROM flag_features WHERE flag IN (SELECT unnest($flags::VARCHAR[]));
