//! Chart archives (`.tgz`, `.tar.gz`) in a release. windlass does not render charts yet (HelmChart
//! support is its own piece of work); until it does, each archive is still checked: it must be a
//! gzip-compressed tar, read in memory only (no path is ever extracted to disk) under limits on
//! the bytes it unpacks to and the entries it holds, and its top-level `Chart.yaml` gives the
//! chart's name and version, so that an archive no `HelmChart` document refers to can be reported
//! instead of silently ignored. While reading, every entry's bytes are searched for the license
//! IDs windlass must never store, since a compressed copy would hide them from a plain search.

use std::io::{self, Read};

use memchr::memmem;

/// Limits for reading one chart archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChartLimits {
    /// Most bytes one archive may unpack to (tar headers included).
    pub max_unpacked_bytes: u64,
    /// Most entries one archive may hold.
    pub max_entries: usize,
}

impl ChartLimits {
    /// What Helm itself accepts for a whole chart, and at most 10,000 entries.
    pub const DEFAULT: ChartLimits = ChartLimits {
        max_unpacked_bytes: 100 * 1024 * 1024,
        max_entries: 10_000,
    };
}

impl Default for ChartLimits {
    fn default() -> ChartLimits {
        ChartLimits::DEFAULT
    }
}

/// Largest `Chart.yaml` read.
const MAX_CHART_YAML_BYTES: u64 = 1024 * 1024;

/// What an archive says about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChartArchive {
    /// `name` of its top-level `Chart.yaml`, if it has one.
    pub name: Option<String>,
    /// `version` of its top-level `Chart.yaml`, if it has one.
    pub version: Option<String>,
}

/// Why an archive is refused. The message never quotes the archive's contents.
#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    /// The bytes are not a gzip-compressed tar.
    #[error("not a valid chart archive (a gzip-compressed tar): {0}")]
    Invalid(String),
    /// It unpacks to more bytes than allowed.
    #[error("chart archive unpacks to more than {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// It holds more entries than allowed.
    #[error("chart archive holds more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// An entry holds one of the searched-for byte strings (a license ID).
    #[error("chart archive entry {entry} holds {what}")]
    Holds {
        /// The entry's path inside the archive.
        entry: String,
        /// What it holds, as the caller described it.
        what: String,
    },
}

/// Counts the bytes read through it and fails once more than `limit` have been read.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let count = self.inner.read(buffer)?;
        self.read += count as u64;
        if self.read > self.limit {
            return Err(io::Error::other(OverLimit));
        }
        Ok(count)
    }
}

#[derive(Debug)]
struct OverLimit;

impl std::fmt::Display for OverLimit {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("over the unpacked size limit")
    }
}

impl std::error::Error for OverLimit {}

/// A byte string to look for in every entry, and how to say it was found (never the bytes).
pub struct Needle<'a> {
    /// The bytes.
    pub bytes: &'a [u8],
    /// What finding them means, for the message.
    pub what: String,
}

/// Reads `bytes` as a chart archive under `limits`, searching every entry for `needles`.
pub fn read_chart_archive(
    bytes: &[u8],
    limits: &ChartLimits,
    needles: &[Needle<'_>],
) -> Result<ChartArchive, ChartError> {
    let mut capped = Capped {
        inner: flate2::read::GzDecoder::new(bytes),
        read: 0,
        limit: limits.max_unpacked_bytes,
    };
    let result = read_entries(&mut capped, limits, needles);
    let result = result.and_then(|chart| {
        // Read to the end of the gzip stream, so that its checksum is verified.
        io::copy(&mut capped, &mut io::sink())
            .map(|_| chart)
            .map_err(|error| io_problem(error, limits))
    });
    match result {
        Err(ChartError::Invalid(_)) if capped.read > limits.max_unpacked_bytes => {
            Err(ChartError::TooLarge {
                limit: limits.max_unpacked_bytes,
            })
        }
        other => other,
    }
}

fn io_problem(error: io::Error, limits: &ChartLimits) -> ChartError {
    if error
        .get_ref()
        .is_some_and(|inner| inner.downcast_ref::<OverLimit>().is_some())
    {
        ChartError::TooLarge {
            limit: limits.max_unpacked_bytes,
        }
    } else {
        ChartError::Invalid(error.to_string())
    }
}

fn read_entries<R: Read>(
    reader: &mut R,
    limits: &ChartLimits,
    needles: &[Needle<'_>],
) -> Result<ChartArchive, ChartError> {
    let finders: Vec<(memmem::Finder<'_>, &str)> = needles
        .iter()
        .filter(|needle| !needle.bytes.is_empty())
        .map(|needle| (memmem::Finder::new(needle.bytes), needle.what.as_str()))
        .collect();
    let mut archive = tar::Archive::new(reader);
    let mut chart = ChartArchive::default();
    let mut found_chart_yaml = false;
    let mut window = Vec::new();
    let entries = archive
        .entries()
        .map_err(|error| io_problem(error, limits))?;
    for (count, entry) in entries.enumerate() {
        if count >= limits.max_entries {
            return Err(ChartError::TooManyEntries {
                limit: limits.max_entries,
            });
        }
        let mut entry = entry.map_err(|error| io_problem(error, limits))?;
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let holds = |what: &str| ChartError::Holds {
            entry: path.clone(),
            what: what.to_string(),
        };
        if !found_chart_yaml && is_top_level_chart_yaml(&path) {
            found_chart_yaml = true;
            let mut contents = Vec::new();
            (&mut entry)
                .take(MAX_CHART_YAML_BYTES + 1)
                .read_to_end(&mut contents)
                .map_err(|error| io_problem(error, limits))?;
            if contents.len() as u64 > MAX_CHART_YAML_BYTES {
                return Err(ChartError::Invalid(format!(
                    "{path} is over {MAX_CHART_YAML_BYTES} bytes"
                )));
            }
            if let Some((_, what)) = finders
                .iter()
                .find(|(finder, _)| finder.find(&contents).is_some())
            {
                return Err(holds(what));
            }
            chart = chart_yaml(&contents);
        } else if let Some(what) =
            search(&mut entry, &finders, &mut window).map_err(|error| io_problem(error, limits))?
        {
            return Err(holds(what));
        }
    }
    Ok(chart)
}

/// Reads `entry` to its end (the archive is read whole either way) in chunks, looking for each
/// finder's needle, also where it spans two chunks; returns what the first needle found means.
fn search<'a>(
    entry: &mut impl Read,
    finders: &[(memmem::Finder<'_>, &'a str)],
    window: &mut Vec<u8>,
) -> io::Result<Option<&'a str>> {
    const CHUNK: usize = 64 * 1024;
    let overlap = finders
        .iter()
        .map(|(finder, _)| finder.needle().len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    window.clear();
    loop {
        let kept = window.len();
        window.resize(kept + CHUNK, 0);
        let count = entry.read(&mut window[kept..])?;
        window.truncate(kept + count);
        if count == 0 {
            return Ok(None);
        }
        if let Some((_, what)) = finders
            .iter()
            .find(|(finder, _)| finder.find(window).is_some())
        {
            return Ok(Some(what));
        }
        let keep_from = window.len().saturating_sub(overlap);
        window.drain(..keep_from);
    }
}

/// `<chart>/Chart.yaml`, as `helm package` writes it (subcharts sit deeper, under `charts/`).
fn is_top_level_chart_yaml(path: &str) -> bool {
    let parts: Vec<&str> = path
        .trim_start_matches("./")
        .split('/')
        .filter(|part| !part.is_empty())
        .collect();
    parts.len() == 2 && parts[1] == "Chart.yaml"
}

/// The name and version of a `Chart.yaml`; what cannot be read stays unknown.
fn chart_yaml(bytes: &[u8]) -> ChartArchive {
    let Some(value) = std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| windlass_manifest::documents::parse_value(text).ok())
    else {
        return ChartArchive::default();
    };
    let field = |name: &str| match value.get(name) {
        Some(serde_json::Value::String(text)) if !text.is_empty() => Some(text.clone()),
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    ChartArchive {
        name: field("name"),
        version: field("version"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, contents) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder
                .append_data(&mut header, path, *contents)
                .expect("append");
        }
        builder
            .into_inner()
            .expect("finish tar")
            .finish()
            .expect("finish gzip")
    }

    #[test]
    fn a_chart_gives_its_name_and_version() {
        let bytes = archive(&[
            (
                "redis/Chart.yaml",
                b"apiVersion: v2\nname: redis\nversion: 1.2.3\n",
            ),
            (
                "redis/charts/sub/Chart.yaml",
                b"name: sub\nversion: 9.9.9\n",
            ),
            ("redis/values.yaml", b"image: redis:7\n"),
        ]);
        let chart = read_chart_archive(&bytes, &ChartLimits::default(), &[]).expect("read");
        assert_eq!(chart.name.as_deref(), Some("redis"));
        assert_eq!(chart.version.as_deref(), Some("1.2.3"));
    }

    #[test]
    fn garbage_truncation_and_bombs_are_refused() {
        let limits = ChartLimits::default();
        let garbage = read_chart_archive(b"\x1f\x8b\x08\0not really gzip", &limits, &[]);
        assert!(
            matches!(garbage, Err(ChartError::Invalid(_))),
            "{garbage:?}"
        );
        let good = archive(&[("c/Chart.yaml", b"name: c\nversion: 1.0.0\n")]);
        let truncated = read_chart_archive(&good[..good.len() - 12], &limits, &[]);
        assert!(
            matches!(truncated, Err(ChartError::Invalid(_))),
            "{truncated:?}"
        );
        let zeros = vec![0u8; 4 * 1024 * 1024];
        let bomb = archive(&[("c/big", &zeros)]);
        let small = ChartLimits {
            max_unpacked_bytes: 1024 * 1024,
            max_entries: 10,
        };
        let refused = read_chart_archive(&bomb, &small, &[]);
        assert!(
            matches!(refused, Err(ChartError::TooLarge { .. })),
            "{refused:?}"
        );
        let many: Vec<(String, Vec<u8>)> = (0..11).map(|i| (format!("c/f{i}"), vec![])).collect();
        let many: Vec<(&str, &[u8])> = many
            .iter()
            .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
            .collect();
        let refused = read_chart_archive(&archive(&many), &small, &[]);
        assert!(
            matches!(refused, Err(ChartError::TooManyEntries { limit: 10 })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_needle_inside_an_entry_is_found() {
        let bytes = archive(&[("c/templates/secret.yaml", b"token: s3cr3t-id\n")]);
        let needle = Needle {
            bytes: b"s3cr3t-id",
            what: "the secret".into(),
        };
        let found = read_chart_archive(&bytes, &ChartLimits::default(), &[needle])
            .expect_err("found")
            .to_string();
        assert_eq!(
            found,
            "chart archive entry c/templates/secret.yaml holds the secret"
        );
    }
}
