-- The baseline pipeline. It works on profiles (distinct flag set x vendor group) of the
-- hosts in `selected`, never on hosts one by one, and fills temp tables prefixed bl_.

-- name: baseline-profiles
-- one row per distinct (flag set, libvirt view, vendor group) among the selected hosts
CREATE OR REPLACE TEMP TABLE bl_profiles AS
SELECT row_number() OVER (ORDER BY coalesce(v.vendor_group, 'unknown'), min(d.family), min(d.model),
                          min(d.stepping), min(s.host)) AS profile,
       d.flagset_id,
       g.guest_flagset_id,
       coalesce(v.vendor_group, 'unknown') AS vgroup,
       list(s.host ORDER BY s.host) AS hosts,
       sum(s.weight)::BIGINT AS n_hosts
FROM selected s
JOIN dumps d USING (dump_id)
LEFT JOIN dumps g ON g.dump_id = s.guest_dump_id
LEFT JOIN vendors v ON v.vendor = d.vendor
GROUP BY d.flagset_id, g.guest_flagset_id, coalesce(v.vendor_group, 'unknown');

-- name: baseline-have
-- what each profile has: the features its kernel flags show (vendor-aware) and those its guest
-- view lists. With a guest view (domcapabilities, raw CPUID), guest-settable features come from
-- it alone: it is exact where lscpu hides bits or shows what KVM cannot give. Without one, hidden
-- bits other flags prove count (amd-ssbd with ibrs on AMD). When the target checks against the
-- hypervisor ($hypervisor), KVM's own gifts count too: the features it emulates on every host
-- (x2apic, tsc-deadline, ...) and, in pools of both vendors, those it derives from the host
-- kernel's flags (the AMD-encoded speculation bits on Intel); data/kvm_given.yaml has them all.
-- Nova before 27 checks the host's own CPU, where KVM's gifts do not count.
CREATE OR REPLACE TEMP TABLE bl_have AS
SELECT DISTINCT p.profile, ff.feature
FROM bl_profiles p
JOIN flagset_flags fs ON fs.flagset_id = p.flagset_id
JOIN flag_features ff ON ff.flag = fs.flag AND (ff.vendor = 'any' OR ff.vendor = p.vgroup)
JOIN features f ON f.feature = ff.feature
WHERE p.guest_flagset_id IS NULL OR f.class <> 'guest'
UNION
SELECT p.profile, fs.flag AS feature
FROM bl_profiles p
JOIN flagset_flags fs ON fs.flagset_id = p.guest_flagset_id
UNION
SELECT p.profile, k.feature
FROM bl_profiles p
JOIN kvm_given k ON k.vendor = p.vgroup
LEFT JOIN flagset_flags fs ON fs.flagset_id = p.flagset_id AND fs.flag = k.flag
WHERE CASE k.kind
          WHEN 'hidden' THEN p.guest_flagset_id IS NULL
          WHEN 'emulated' THEN $hypervisor
          ELSE $hypervisor AND (SELECT count(DISTINCT vgroup) FROM bl_profiles) > 1
      END
GROUP BY p.profile, k.rule, k.feature
HAVING bool_and(k.flag = '' OR fs.flag IS NOT NULL);

-- name: baseline-common
-- C: the guest-settable features every profile can give (unmigratable ones only when allowed)
CREATE OR REPLACE TEMP TABLE bl_common AS
SELECT h.feature
FROM bl_have h JOIN features f USING (feature)
WHERE f.class = 'guest' OR (f.class = 'unmigratable' AND $allow_unmigratable)
GROUP BY h.feature
HAVING count(DISTINCT h.profile) = (SELECT count(*) FROM bl_profiles);

-- name: baseline-config
-- the candidate models, the name a config uses for each, and where libvirt's definition comes from
CREATE OR REPLACE TEMP TABLE bl_config AS
SELECT unnest($models::VARCHAR[]) AS model, unnest($aliases::VARCHAR[]) AS alias,
       unnest($definitions::VARCHAR[]) AS definition;

-- name: baseline-vocabulary
-- the QEMU features the target's QEMU and libvirt can name: extra and disabled flags must be among
-- them. QEMU release X names a feature when a model version X offers contains it, or, for a name
-- QEMU 7.2 accepts, when no model before 7.2 used it (an old, unmodelled bit such as cmp-legacy)
-- or X is 7.2 or newer. libvirt release Y names it from its libvirt_since (9.0 names are taken to
-- hold for the 8.0 floor too); $libvirt_names (an imported cpu_map) replaces that rule.
CREATE OR REPLACE TEMP TABLE bl_known AS
WITH first_model AS (
    SELECT mf.feature, min(m.qemu_first_num) AS first_qemu
    FROM model_features mf JOIN models m USING (model)
    WHERE mf.required_by = 'qemu' AND m.origin = 'qemu'
    GROUP BY mf.feature
)
SELECT f.feature
FROM features f LEFT JOIN first_model fm USING (feature)
WHERE ((fm.first_qemu IS NOT NULL AND fm.first_qemu <= $qemu)
       OR (f.in_qemu_7_2 AND (fm.first_qemu IS NULL OR fm.first_qemu > 70200 OR $qemu >= 70200)))
  AND CASE
          WHEN $libvirt_names IS NOT NULL THEN list_contains($libvirt_names::VARCHAR[], f.feature)
          WHEN $libvirt IS NULL THEN true
          ELSE f.libvirt_since IS NOT NULL AND f.libvirt_since <= greatest($libvirt, 90000)
      END;

-- name: baseline-unnamed-common
-- common guest features no extra flag will carry, and why: the target cannot name them, or they
-- follow the guest's PMU and are offered only with --pmu
SELECT feature, CASE WHEN feature IN (SELECT feature FROM bl_known) THEN 'pmu' ELSE 'name' END AS why
FROM bl_common
WHERE feature NOT IN (SELECT feature FROM bl_known)
   OR (NOT $pmu AND list_contains($pmu_features::VARCHAR[], feature))
ORDER BY why, feature;

-- name: baseline-required-extra
-- features the libvirt definition of each candidate's config name requires beyond QEMU's model
CREATE OR REPLACE TEMP TABLE bl_required_extra AS
SELECT c.model, mf.feature
FROM bl_config c JOIN model_features mf ON mf.model = c.model AND mf.required_by = c.definition
UNION
SELECT unnest($extra_model::VARCHAR[]), unnest($extra_feature::VARCHAR[]);

-- name: baseline-status
-- each candidate's required features, judged over all profiles: ok, missing (with the profiles
-- lacking it), unverifiable from lscpu, disabled because KVM cannot provide it, disabled because
-- nested virtualization is not on every host, or ignored (the hypervisor bit). A feature's
-- standing over the profiles does not depend on the model, so it is judged once per feature.
CREATE OR REPLACE TEMP TABLE bl_status AS
WITH required AS (
    SELECT c.model, mf.feature, true AS by_qemu
    FROM bl_config c JOIN model_features mf ON mf.model = c.model AND mf.required_by = 'qemu'
    UNION ALL
    SELECT model, feature, false FROM bl_required_extra
),
merged AS (
    SELECT model, feature, bool_or(by_qemu) AS by_qemu FROM required GROUP BY model, feature
),
judged AS (
    SELECT f.feature, p.profile,
           CASE
               WHEN h.feature IS NOT NULL THEN 'yes'
               WHEN p.guest_flagset_id IS NULL
                    AND NOT (CASE p.vgroup WHEN 'intel' THEN f.visible_intel
                                           WHEN 'amd' THEN f.visible_amd
                                           ELSE f.visible_intel AND f.visible_amd END)
                    AND (f.native_vendor = 'any' OR f.native_vendor = p.vgroup) THEN 'unknown'
               ELSE 'no'
           END AS status
    FROM (SELECT DISTINCT feature FROM merged) r
    JOIN features f USING (feature)
    CROSS JOIN bl_profiles p
    LEFT JOIN bl_have h ON h.profile = p.profile AND h.feature = r.feature
),
standing AS (
    SELECT feature,
           bool_and(status = 'yes') AS everywhere,
           bool_or(status = 'no') AS lacking_somewhere,
           bool_or(status = 'unknown') AS unknown_somewhere,
           list(profile ORDER BY profile) FILTER (WHERE status = 'no') AS lacking
    FROM judged GROUP BY feature
)
SELECT m.model, m.feature, m.by_qemu, f.class, s.lacking_somewhere,
       CASE
           WHEN f.class = 'guest-marker' THEN 'ignored'
           WHEN m.by_qemu AND f.class = 'host-only' THEN 'kvm-disabled'
           WHEN m.by_qemu AND f.class = 'nested' AND NOT s.everywhere THEN 'nested-disabled'
           WHEN s.lacking_somewhere THEN 'missing'
           WHEN s.unknown_somewhere THEN 'unverifiable'
           ELSE 'ok'
       END AS verdict,
       s.lacking
FROM merged m JOIN features f USING (feature) JOIN standing s USING (feature);

-- name: baseline-ranking
-- every candidate with what a config must change: extra flags (C minus the model, nameable, PMU
-- ones only with $pmu) and disabled ones (missing on some host, or KVM cannot give them, or
-- nested virtualization not on every host). Every usable candidate gives guests the same
-- features, so they rank by edits, then the pool's vendor, then newer, then named over
-- generic. A candidate is unusable when a flag it must disable has no name in the target, or
-- when the target compares the bare model with each host's own CPU (Nova before 27) and a
-- model feature is missing on some host.
WITH model_qemu AS (
    SELECT c.model, mf.feature FROM bl_config c JOIN model_features mf ON mf.model = c.model AND mf.required_by = 'qemu'
),
per_model AS (
    SELECT model,
           list(feature ORDER BY feature) FILTER (WHERE verdict = 'missing') AS missing,
           list(feature ORDER BY feature) FILTER (WHERE verdict = 'unverifiable') AS unverifiable,
           list(feature ORDER BY feature) FILTER (WHERE verdict = 'kvm-disabled') AS kvm_disabled,
           list(feature ORDER BY feature) FILTER (WHERE verdict = 'nested-disabled') AS nested_disabled,
           list(feature ORDER BY feature) FILTER (WHERE verdict IN ('missing', 'kvm-disabled', 'nested-disabled')
                                                  AND feature NOT IN (SELECT feature FROM bl_known)) AS unnameable,
           bool_or(lacking_somewhere AND verdict IN ('missing', 'kvm-disabled', 'nested-disabled')) AS lacking_on_host
    FROM bl_status GROUP BY model
),
extras AS (
    SELECT c.model, list(bc.feature ORDER BY bc.feature) AS extra
    FROM bl_config c CROSS JOIN bl_common bc
    WHERE NOT EXISTS (SELECT 1 FROM model_qemu q WHERE q.model = c.model AND q.feature = bc.feature)
      AND bc.feature IN (SELECT feature FROM bl_known)
      AND ($pmu OR NOT list_contains($pmu_features::VARCHAR[], bc.feature))
    GROUP BY c.model
),
pool_vendors AS (SELECT list(DISTINCT vgroup) AS groups FROM bl_profiles),
judged AS (
    SELECT cfg.model, cfg.alias, m.vendor, m.generic, m.age,
           coalesce(pm.missing, []) AS missing,
           coalesce(pm.unverifiable, []) AS unverifiable,
           coalesce(pm.kvm_disabled, []) AS kvm_disabled,
           coalesce(pm.nested_disabled, []) AS nested_disabled,
           coalesce(e.extra, []) AS extra,
           coalesce(pm.unnameable, []) AS unnameable,
           coalesce(pm.lacking_on_host, false) AS lacking_on_host,
           NOT m.generic AND list_contains((SELECT groups FROM pool_vendors), coalesce(v.vendor_group, '')) AS vendor_match
    FROM bl_config cfg
    JOIN models m USING (model)
    LEFT JOIN vendors v ON v.vendor = m.vendor
    LEFT JOIN per_model pm USING (model)
    LEFT JOIN extras e USING (model)
)
SELECT *,
       len(extra) + len(missing) + len(kvm_disabled) + len(nested_disabled) AS edits,
       len(unnameable) = 0 AND ($disable_missing OR NOT lacking_on_host) AS usable
FROM judged
ORDER BY usable DESC, edits ASC, vendor_match DESC, age DESC, generic ASC, model;

-- name: baseline-missing-hosts
-- for each missing feature of each candidate, the profiles that lack it
SELECT model, feature, lacking FROM bl_status WHERE verdict = 'missing' ORDER BY model, feature;

-- name: baseline-profile-list
-- the profiles with their hosts, vendor group and planned host count
SELECT profile, vgroup, hosts, n_hosts FROM bl_profiles ORDER BY profile;

-- name: baseline-common-features
-- C, with each feature's kernel and libvirt spelling
SELECT bc.feature, f.kernel, f.libvirt, f.class FROM bl_common bc JOIN features f USING (feature) ORDER BY bc.feature;

-- name: baseline-not-expressible
-- kernel flags every selected host has that no guest CPU model can carry, with class and reason
WITH counts AS (
    SELECT fs.flag, count(DISTINCT p.profile) AS n
    FROM bl_profiles p JOIN flagset_flags fs ON fs.flagset_id = p.flagset_id
    GROUP BY fs.flag
)
SELECT c.flag, coalesce(fc.class, 'unknown') AS class,
       coalesce(fc.reason, 'not in the flag dictionary: cpudb cannot tell what it is, so it is never requested') AS reason
FROM counts c LEFT JOIN flag_classes fc USING (flag)
WHERE c.n = (SELECT count(*) FROM bl_profiles)
  AND (fc.class IS NULL OR fc.class NOT IN ('guest', 'unmigratable')
       OR (fc.class = 'unmigratable' AND NOT $allow_unmigratable))
ORDER BY class, c.flag;

-- name: baseline-flag-hosts
-- per kernel flag in $flags, the selected hosts that lack it
SELECT f.flag, list(s.host ORDER BY s.host) AS lacking
FROM (SELECT unnest($flags::VARCHAR[]) AS flag) f
CROSS JOIN selected s
JOIN dumps d USING (dump_id)
WHERE NOT EXISTS (SELECT 1 FROM flagset_flags fs WHERE fs.flagset_id = d.flagset_id AND fs.flag = f.flag)
GROUP BY f.flag;

-- name: guest-flags
-- the kernel flags (current spelling) a guest with the QEMU features $features would print, with
-- their class: a guest kernel computes its summary flags from any vendor's bit
SELECT DISTINCT fs.flag, fc.class
FROM flag_sources fs JOIN flag_classes fc USING (flag)
WHERE fs.feature IN (SELECT unnest($features::VARCHAR[]))
  AND fc.class IN ('guest', 'unmigratable', 'nested')
ORDER BY fs.flag;

-- name: baseline-libvirt-extra
-- the features libvirt's definition of $model's config name requires beyond QEMU's model
SELECT feature FROM bl_required_extra WHERE model = $model ORDER BY feature;

-- name: feature-spellings
-- the libvirt spelling of each QEMU feature in $features
SELECT feature, libvirt FROM features WHERE feature IN (SELECT unnest($features::VARCHAR[])) ORDER BY feature;

-- name: candidate-models
-- 64-bit QEMU model versions (not Proxmox's built-in types) with their family and first QEMU / libvirt releases
SELECT model, family_name, qemu_first_num, libvirt_first_num FROM models WHERE has_lm AND origin = 'qemu' ORDER BY model;

-- name: all-model-aliases
-- every alias of every model version, with its kind
SELECT alias, model, kind FROM model_aliases ORDER BY model, kind, alias;

-- name: model-libvirt-first
-- the first libvirt release that knows a model version's versioned name
SELECT libvirt_first FROM models WHERE model = $model;

-- name: proxmox-builtins
-- Proxmox VE's built-in types (x86-64-vN) with the QEMU model they are based on
SELECT model, base FROM models WHERE origin = 'proxmox' ORDER BY model;

-- name: flag-sources
-- for kernel flags in $flags, every QEMU feature behind them (any vendor)
SELECT flag, feature FROM flag_sources WHERE flag IN (SELECT unnest($flags::VARCHAR[])) ORDER BY flag, feature;

-- name: baseline-common-list
-- C of the last baseline
SELECT feature FROM bl_common ORDER BY feature;

-- name: baseline-known-list
-- the features the last baseline's target can name
SELECT feature FROM bl_known ORDER BY feature;

-- name: baseline-kvm-provided
-- of $features, those KVM provides beyond some profile's own kernel flags (emulated on every host,
-- or derived from the host kernel's flags): only targets that check against the hypervisor take them
WITH given AS (SELECT DISTINCT feature FROM kvm_given WHERE kind <> 'hidden')
SELECT f.feature
FROM (SELECT unnest($features::VARCHAR[]) AS feature) f
WHERE f.feature IN (SELECT feature FROM given)
  AND EXISTS (
      SELECT 1 FROM bl_profiles p
      WHERE NOT EXISTS (
          SELECT 1 FROM flagset_flags fs
          JOIN flag_features ff ON ff.flag = fs.flag AND (ff.vendor = 'any' OR ff.vendor = p.vgroup)
          WHERE fs.flagset_id = p.flagset_id AND ff.feature = f.feature))
ORDER BY f.feature;

-- name: libvirt-9-0-names
-- the names libvirt 9.0 knows for model versions
SELECT alias, model FROM model_aliases WHERE kind = 'libvirt-9.0' ORDER BY alias;

-- name: baseline-profile-flags
-- the kernel flags of each profile of the last baseline
SELECT p.profile, list(fs.flag ORDER BY fs.flag)
FROM bl_profiles p JOIN flagset_flags fs ON fs.flagset_id = p.flagset_id
GROUP BY p.profile ORDER BY p.profile;

-- name: baseline-profile-guest-features
-- each profile's guest-settable features (the sets the pool's common features are cut from)
SELECT h.profile, list(h.feature ORDER BY h.feature)
FROM bl_have h JOIN features f USING (feature)
WHERE f.class = 'guest'
GROUP BY h.profile ORDER BY h.profile;

-- name: baseline-model-lacking
-- for one candidate model of the last baseline: each missing feature and the profiles lacking it
SELECT feature, lacking FROM bl_status WHERE model = $model AND verdict = 'missing' ORDER BY feature;

-- name: baseline-is-candidate
-- whether a model was among the last baseline's candidates
SELECT 1 FROM bl_config WHERE model = $model;
