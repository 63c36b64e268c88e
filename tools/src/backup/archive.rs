//! What an archive is called and what it says about itself: self-describing, sortable names
//! (`etcd-snapshot-<UTC time>-c<cluster ID>-r<revision>.db.zst`, so name order is time
//! order) and the metadata stored with every archive.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const PREFIX: &str = "etcd-snapshot-";
pub const EXT: &str = ".db.zst";

/// What an archive's name tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameInfo {
    /// Milliseconds since the Unix epoch (UTC).
    pub millis: i64,
    pub cluster_id: u64,
    pub revision: i64,
}

/// The archive name for a snapshot taken at `t` of `cluster_id` at `revision`.
pub fn name(t: SystemTime, cluster_id: u64, revision: i64) -> String {
    let ms = t
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis() as i64;
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    format!(
        "{PREFIX}{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{:03}Z-c{cluster_id:016x}-r{revision}{EXT}",
        ms % 1000
    )
}

/// Parses an archive name made by [`name`]; None for anything else.
pub fn parse(name: &str) -> Option<NameInfo> {
    let body = name.strip_prefix(PREFIX)?.strip_suffix(EXT)?;
    let mut parts = body.split('-');
    let t = parts.next()?;
    let c = parts.next()?.strip_prefix('c')?;
    let r = parts.next()?.strip_prefix('r')?;
    if parts.next().is_some() || t.len() != 20 || c.len() != 16 {
        return None;
    }
    let num = |a: usize, b: usize| t.get(a..b)?.parse::<i64>().ok();
    if t.as_bytes().get(8) != Some(&b'T') || t.as_bytes().get(15) != Some(&b'.') {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(4, 6)?, num(6, 8)?);
    let (h, mi, s, ms) = (num(9, 11)?, num(11, 13)?, num(13, 15)?, num(16, 19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    Some(NameInfo {
        millis: secs * 1000 + ms,
        cluster_id: u64::from_str_radix(c, 16).ok()?,
        revision: r.parse().ok()?,
    })
}

/// `2026-11-21T08:00:00Z` for seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Year, month, day, hour, minute, second (UTC) of seconds since the epoch.
pub fn civil(secs: i64) -> (i64, i64, i64, i64, i64, i64) {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Days to a proleptic Gregorian date (eras of 400 years).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since the epoch of a Gregorian date.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The metadata stored with every archive (S3 user metadata; a JSON sidecar in a directory).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Meta {
    /// sha256 (hex) of the uncompressed snapshot file, as `fetch -o` writes it.
    pub sha256: String,
    /// Size in bytes of the uncompressed snapshot.
    pub size: u64,
    pub revision: i64,
    pub cluster_id: u64,
    pub member_id: u64,
    pub endpoint: String,
    pub version: String,
    pub compression: String,
    /// When the snapshot was taken (RFC 3339, UTC).
    pub created: String,
}

impl Meta {
    pub fn to_map(&self) -> HashMap<String, String> {
        HashMap::from([
            ("sha256".to_string(), self.sha256.clone()),
            ("uncompressed-size".to_string(), self.size.to_string()),
            ("revision".to_string(), self.revision.to_string()),
            ("cluster-id".to_string(), format!("{:x}", self.cluster_id)),
            ("member-id".to_string(), format!("{:x}", self.member_id)),
            ("endpoint".to_string(), self.endpoint.clone()),
            ("retcd-version".to_string(), self.version.clone()),
            ("compression".to_string(), self.compression.clone()),
            ("created".to_string(), self.created.clone()),
        ])
    }

    pub fn from_map(m: &HashMap<String, String>) -> Result<Meta, String> {
        let get = |k: &str| {
            m.get(k)
                .cloned()
                .ok_or_else(|| format!("archive metadata has no {k:?}"))
        };
        let num = |k: &str| -> Result<u64, String> {
            get(k)?
                .parse()
                .map_err(|_| format!("archive metadata {k:?} is not a number"))
        };
        let hex = |k: &str| -> Result<u64, String> {
            u64::from_str_radix(&get(k)?, 16)
                .map_err(|_| format!("archive metadata {k:?} is not a hex ID"))
        };
        let sha256 = get("sha256")?;
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("archive metadata \"sha256\" is not a sha256".into());
        }
        Ok(Meta {
            sha256,
            size: num("uncompressed-size")?,
            revision: num("revision")? as i64,
            cluster_id: hex("cluster-id")?,
            member_id: hex("member-id")?,
            endpoint: m.get("endpoint").cloned().unwrap_or_default(),
            version: m.get("retcd-version").cloned().unwrap_or_default(),
            compression: get("compression")?,
            created: m.get("created").cloned().unwrap_or_default(),
        })
    }

    pub fn to_json(&self) -> String {
        let mut m: Vec<(String, String)> = self.to_map().into_iter().collect();
        m.sort();
        let obj: serde_json::Map<String, serde_json::Value> = m
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        format!("{}\n", serde_json::Value::Object(obj))
    }

    pub fn from_json(text: &str) -> Result<Meta, String> {
        let v: HashMap<String, String> =
            serde_json::from_str(text).map_err(|e| format!("archive metadata: {e}"))?;
        Meta::from_map(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_time() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_248_000_123);
        let n = name(t, 0xcdf818194e3a8c32, 42);
        assert_eq!(
            n,
            "etcd-snapshot-20261121T080000.123Z-ccdf818194e3a8c32-r42.db.zst"
        );
        assert_eq!(
            parse(&n),
            Some(NameInfo {
                millis: 1_795_248_000_123,
                cluster_id: 0xcdf818194e3a8c32,
                revision: 42
            })
        );
        let later = name(t + Duration::from_secs(3600), 1, 7);
        assert!(later > n);
        assert_eq!(parse("etcd-snapshot-x.db.zst"), None);
        assert_eq!(parse(&n.replace(".db.zst", ".db")), None);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(days_from_civil(2000, 2, 29), 951_782_400 / 86400);
        assert_eq!(rfc3339(1_795_248_000), "2026-11-21T08:00:00Z");
    }

    #[test]
    fn metadata_round_trips() {
        let m = Meta {
            sha256: "ab".repeat(32),
            size: 4096,
            revision: 9,
            cluster_id: 0xdead,
            member_id: 0xbeef,
            endpoint: "127.0.0.1:2379".into(),
            version: "3.5.0".into(),
            compression: "zstd".into(),
            created: "2026-11-21T08:00:00Z".into(),
        };
        assert_eq!(Meta::from_map(&m.to_map()), Ok(m.clone()));
        assert_eq!(Meta::from_json(&m.to_json()), Ok(m.clone()));
        let mut broken = m.to_map();
        broken.insert("sha256".into(), "zz".into());
        assert!(Meta::from_map(&broken).is_err());
    }
}
