//! Finding a HelmChart's archive in a release, as KOTS's `FindHelmChartArchiveInRelease` does: any
//! release file that is a gzip-compressed tar is a candidate, its common leading directory is
//! stripped, and the first (in path order) whose root `Chart.yaml` has the HelmChart's
//! `chart.name` **and** `chart.chartVersion` wins (a HelmChart without `chartVersion` takes the
//! first archive of that name). Archives are read in memory only, under limits
//! on their size, the bytes they unpack to and their entries; an entry whose path is absolute or
//! climbs out with `..`, or that is a link or a device, refuses the archive (helm reads the archive
//! itself later, so nothing here is ever extracted to disk).

use std::collections::BTreeMap;
use std::io::{self, Read};

/// Limits for reading one chart archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArchiveLimits {
    /// Most bytes one archive file may hold (compressed).
    pub max_archive_bytes: u64,
    /// Most bytes one archive may unpack to (tar headers included).
    pub max_unpacked_bytes: u64,
    /// Most entries one archive may hold.
    pub max_entries: usize,
}

impl ArchiveLimits {
    /// 20 MiB compressed, 100 MiB unpacked (what Helm itself accepts for a chart), 10,000 entries.
    pub const DEFAULT: ArchiveLimits = ArchiveLimits {
        max_archive_bytes: 20 * 1024 * 1024,
        max_unpacked_bytes: 100 * 1024 * 1024,
        max_entries: 10_000,
    };
}

impl Default for ArchiveLimits {
    fn default() -> ArchiveLimits {
        ArchiveLimits::DEFAULT
    }
}

/// Largest `Chart.yaml` or `Chart.lock` read.
const MAX_CHART_METADATA_BYTES: usize = 1024 * 1024;

/// One release file offered to [`find_chart_archive`].
#[derive(Debug, Clone, Copy)]
pub struct ReleaseFile<'a> {
    /// Path relative to the release root, `/`-separated.
    pub path: &'a str,
    /// Its bytes.
    pub bytes: &'a [u8],
}

/// What a HelmChart asks for, and how to name it in an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartWanted {
    /// How the HelmChart is named in messages, e.g. `HelmChart my-chart (kots/chart.yaml)`.
    pub helm_chart: String,
    /// `spec.chart.name`.
    pub name: String,
    /// `spec.chart.chartVersion`, compared as written; empty matches any version (the first
    /// archive of that name in path order), as windlass's unreferenced-archive check reads it.
    pub version: String,
}

/// One dependency of a chart's `Chart.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// `name`.
    pub name: String,
    /// `alias`, if set: the name helm renders the subchart under.
    pub alias: Option<String>,
}

/// The archive found for a HelmChart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChartArchive {
    /// The release file it is.
    pub path: String,
    /// Its bytes as shipped (helm reads these).
    pub bytes: Vec<u8>,
    /// `name` of its root `Chart.yaml`.
    pub name: String,
    /// `version` of its root `Chart.yaml`.
    pub version: String,
    /// `dependencies` of its root `Chart.yaml`.
    pub dependencies: Vec<Dependency>,
    /// The root `Chart.yaml` and, if present, `Chart.lock`, by name, as KOTS copies them beside
    /// the rendered chart.
    pub metadata_files: BTreeMap<String, Vec<u8>>,
}

/// What one candidate archive turned out to be, for the "not found" error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The release file.
    pub path: String,
    /// Its root `Chart.yaml`'s name and version, or `None` when it has none.
    pub chart: Option<(String, String)>,
}

/// Why no archive could be taken. Messages quote no archive content beyond chart names, versions
/// and entry paths.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// No candidate's root `Chart.yaml` matches both name and version.
    #[error("{helm_chart}: no chart archive in the release is chart {name} version {version}; found {}", found_list(.found))]
    NotFound {
        /// The HelmChart, as [`ChartWanted::helm_chart`].
        helm_chart: String,
        /// The wanted name.
        name: String,
        /// The wanted version.
        version: String,
        /// Every gzip file looked at.
        found: Vec<Candidate>,
    },
    /// A gzip file is larger than allowed.
    #[error("chart archive {path} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// The release file.
        path: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// It unpacks to more bytes than allowed.
    #[error("chart archive {path} unpacks to more than {limit} bytes")]
    UnpacksTooLarge {
        /// The release file.
        path: String,
        /// The limit.
        limit: u64,
    },
    /// It holds more entries than allowed.
    #[error("chart archive {path} holds more than {limit} entries")]
    TooManyEntries {
        /// The release file.
        path: String,
        /// The limit.
        limit: usize,
    },
    /// An entry's path is absolute or climbs out of the archive, or the entry is a link or device.
    #[error("chart archive {path}: entry {entry} {problem}")]
    UnsafeEntry {
        /// The release file.
        path: String,
        /// The entry's path as written in the archive.
        entry: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The archive's root `Chart.yaml` matches but cannot be read as a chart.
    #[error("chart archive {path}: Chart.yaml {problem}")]
    BadChartYaml {
        /// The release file.
        path: String,
        /// What is wrong.
        problem: String,
    },
}

fn found_list(found: &[Candidate]) -> String {
    if found.is_empty() {
        return "no chart archive (no gzip-compressed tar) at all".to_string();
    }
    found
        .iter()
        .map(|candidate| match &candidate.chart {
            Some((name, version)) => format!("{} (chart {name} version {version})", candidate.path),
            None => format!("{} (no root Chart.yaml with a name)", candidate.path),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `bytes` start like a gzip stream.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Finds the archive `wanted` names among `files` (taken in path order).
///
/// A gzip file that is not a tar, or whose stream is damaged, is not a candidate (KOTS skips it
/// too) but is listed in the error; one over a limit or with an unsafe entry is refused outright,
/// since it cannot be looked into safely.
pub fn find_chart_archive<'a>(
    files: impl IntoIterator<Item = ReleaseFile<'a>>,
    wanted: &ChartWanted,
    limits: &ArchiveLimits,
) -> Result<ChartArchive, ArchiveError> {
    let mut files: Vec<ReleaseFile<'a>> = files
        .into_iter()
        .filter(|file| is_gzip(file.bytes))
        .collect();
    files.sort_by(|a, b| a.path.cmp(b.path));
    let mut found = Vec::new();
    for file in files {
        let size = file.bytes.len() as u64;
        if size > limits.max_archive_bytes {
            return Err(ArchiveError::TooLarge {
                path: file.path.to_string(),
                size,
                limit: limits.max_archive_bytes,
            });
        }
        let Some(contents) = read_archive(file.path, file.bytes, limits)? else {
            found.push(Candidate {
                path: file.path.to_string(),
                chart: None,
            });
            continue;
        };
        let Some(chart_yaml) = contents.get("Chart.yaml") else {
            found.push(Candidate {
                path: file.path.to_string(),
                chart: None,
            });
            continue;
        };
        let Some(chart) = parse_chart_yaml(chart_yaml) else {
            found.push(Candidate {
                path: file.path.to_string(),
                chart: None,
            });
            continue;
        };
        if chart.name == wanted.name
            && (wanted.version.is_empty() || chart.version == wanted.version)
        {
            let mut metadata_files = BTreeMap::new();
            for name in ["Chart.yaml", "Chart.lock"] {
                if let Some(bytes) = contents.get(name) {
                    metadata_files.insert(name.to_string(), bytes.clone());
                }
            }
            return Ok(ChartArchive {
                path: file.path.to_string(),
                bytes: file.bytes.to_vec(),
                name: chart.name,
                version: chart.version,
                dependencies: chart.dependencies,
                metadata_files,
            });
        }
        found.push(Candidate {
            path: file.path.to_string(),
            chart: Some((chart.name, chart.version)),
        });
    }
    Err(ArchiveError::NotFound {
        helm_chart: wanted.helm_chart.clone(),
        name: wanted.name.clone(),
        version: wanted.version.clone(),
        found,
    })
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
            return Err(io::Error::other("over the unpacked size limit"));
        }
        Ok(count)
    }
}

/// Reads the archive's root metadata files (after stripping the common leading directory), or
/// `None` when it is not a readable gzip tar.
fn read_archive(
    path: &str,
    bytes: &[u8],
    limits: &ArchiveLimits,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, ArchiveError> {
    let mut capped = Capped {
        inner: flate2::read::GzDecoder::new(bytes),
        read: 0,
        limit: limits.max_unpacked_bytes,
    };
    let too_large = |capped: &Capped<_>| capped.read > limits.max_unpacked_bytes;
    let mut archive = tar::Archive::new(&mut capped);
    let mut kept: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
    let mut all_paths: Vec<Vec<String>> = Vec::new();
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(_) => return Ok(None),
    };
    let mut failed = false;
    for (count, entry) in entries.enumerate() {
        if count >= limits.max_entries {
            return Err(ArchiveError::TooManyEntries {
                path: path.to_string(),
                limit: limits.max_entries,
            });
        }
        let mut entry = match entry {
            Ok(entry) => entry,
            Err(_) => {
                failed = true;
                break;
            }
        };
        let written = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let unsafe_entry = |problem| ArchiveError::UnsafeEntry {
            path: path.to_string(),
            entry: written.clone(),
            problem,
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            return Err(unsafe_entry("is a link"));
        }
        if kind.is_character_special() || kind.is_block_special() || kind.is_fifo() {
            return Err(unsafe_entry("is a device or FIFO"));
        }
        if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
        {
            continue;
        }
        let components = match safe_components(&written) {
            Ok(components) => components,
            Err(problem) => return Err(unsafe_entry(problem)),
        };
        if kind.is_dir() || components.is_empty() {
            continue;
        }
        let name = components.last().map(String::as_str).unwrap_or_default();
        let mut contents = Vec::new();
        if (components.len() <= 2) && (name == "Chart.yaml" || name == "Chart.lock") {
            if (&mut entry)
                .take(MAX_CHART_METADATA_BYTES as u64 + 1)
                .read_to_end(&mut contents)
                .is_err()
            {
                failed = true;
                break;
            }
            if contents.len() > MAX_CHART_METADATA_BYTES {
                return Err(ArchiveError::BadChartYaml {
                    path: path.to_string(),
                    problem: format!("{written} is over {MAX_CHART_METADATA_BYTES} bytes"),
                });
            }
        }
        if io::copy(&mut entry, &mut io::sink()).is_err() {
            failed = true;
            break;
        }
        all_paths.push(components.clone());
        if !contents.is_empty() {
            kept.push((components, contents));
        }
    }
    if !failed && io::copy(&mut capped, &mut io::sink()).is_err() {
        failed = true;
    }
    if too_large(&capped) {
        return Err(ArchiveError::UnpacksTooLarge {
            path: path.to_string(),
            limit: limits.max_unpacked_bytes,
        });
    }
    if failed {
        return Ok(None);
    }
    let strip = common_leading_directory(&all_paths);
    Ok(Some(
        kept.into_iter()
            .filter(|(components, _)| components.len() == strip + 1)
            .map(|(components, bytes)| (components[strip..].join("/"), bytes))
            .collect(),
    ))
}

/// The path's normal components, or why it is unsafe.
fn safe_components(path: &str) -> Result<Vec<String>, &'static str> {
    if path.starts_with('/') {
        return Err("has an absolute path");
    }
    let mut components = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("climbs out of the archive with .."),
            part if part.contains('\\') || part.contains('\0') => {
                return Err("has a backslash or NUL in its path");
            }
            part => components.push(part.to_string()),
        }
    }
    Ok(components)
}

/// How many leading directories every file shares (KOTS strips them), at most one level short of
/// every file.
fn common_leading_directory(paths: &[Vec<String>]) -> usize {
    let Some(first) = paths.first() else {
        return 0;
    };
    let mut shared = first.len().saturating_sub(1);
    for path in &paths[1..] {
        let common = first
            .iter()
            .zip(path.iter())
            .take_while(|(a, b)| a == b)
            .count();
        shared = shared.min(common).min(path.len().saturating_sub(1));
    }
    shared
}

/// A root `Chart.yaml`'s fields windlass uses.
struct ChartYaml {
    name: String,
    version: String,
    dependencies: Vec<Dependency>,
}

fn parse_chart_yaml(bytes: &[u8]) -> Option<ChartYaml> {
    let text = std::str::from_utf8(bytes).ok()?;
    let value = windlass_manifest::documents::parse_value(text).ok()?;
    let field = |value: &serde_json::Value, name: &str| match value.get(name) {
        Some(serde_json::Value::String(text)) => Some(text.clone()),
        Some(serde_json::Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let name = field(&value, "name").filter(|name| !name.is_empty())?;
    let version = field(&value, "version").unwrap_or_default();
    let dependencies = value
        .get("dependencies")
        .and_then(serde_json::Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|dependency| {
                    Some(Dependency {
                        name: field(dependency, "name")?,
                        alias: field(dependency, "alias").filter(|alias| !alias.is_empty()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    Some(ChartYaml {
        name,
        version,
        dependencies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_named() {
        assert_eq!(safe_components("/etc/passwd"), Err("has an absolute path"));
        assert_eq!(
            safe_components("c/../../x"),
            Err("climbs out of the archive with ..")
        );
        assert_eq!(
            safe_components("./c//templates/x.yaml").unwrap(),
            vec!["c", "templates", "x.yaml"]
        );
    }

    #[test]
    fn the_common_leading_directory_is_stripped_but_never_a_file_name() {
        let paths = |list: &[&str]| -> Vec<Vec<String>> {
            list.iter()
                .map(|path| safe_components(path).unwrap())
                .collect()
        };
        assert_eq!(
            common_leading_directory(&paths(&["c/Chart.yaml", "c/templates/a.yaml"])),
            1
        );
        assert_eq!(
            common_leading_directory(&paths(&["Chart.yaml", "templates/a.yaml"])),
            0
        );
        assert_eq!(
            common_leading_directory(&paths(&["x/c/Chart.yaml", "x/c/values.yaml"])),
            2
        );
    }
}
