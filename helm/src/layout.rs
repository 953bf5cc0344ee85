//! `helm template`'s output laid out as KOTS lays out a rendered chart (`pkg/base/helm.go`): the
//! output is split on helm's `# Source: <chart>/<path>` comments; each source file becomes a file at
//! `<path>` inside the chart's directory (a source with several documents becomes `<stem>.yaml`,
//! `<stem>-2.yaml`, …, as KOTS numbers a release file's documents); a subchart's files sit under
//! `charts/<name or alias>/…` and form a sub-base, and every chart's `crds/` forms its own
//! `crds` sub-base. Hooks are plain documents here: helm prints them like any template.

/// One file of a rendered chart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// The `# Source:` helm printed, e.g. `my-chart/charts/db/templates/statefulset.yaml`.
    pub source: String,
    /// Its path inside the chart's directory, e.g. `charts/db/templates/statefulset.yaml`.
    pub path: String,
    /// The sub-base it belongs to: `""` for the chart itself, `charts/db` for a subchart,
    /// `crds` or `charts/db/crds` for a `crds/` directory.
    pub sub_base: String,
    /// The document's text (without helm's `# Source:` line).
    pub text: String,
}

/// Why helm's output could not be laid out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LayoutError {
    /// A document has no `# Source:` comment.
    #[error("helm printed document {index} without a `# Source:` comment")]
    NoSource {
        /// The document's position, from 1.
        index: usize,
    },
    /// A `# Source:` path is absolute, climbs out with `..`, or names no file inside a chart.
    #[error("helm printed a `# Source:` path windlass will not write: {source_path:?}")]
    BadSource {
        /// The path as printed.
        source_path: String,
    },
}

/// Splits helm's output into files laid out as KOTS lays them out, in helm's order.
pub fn split_output(stdout: &str) -> Result<Vec<RenderedFile>, LayoutError> {
    let mut documents: Vec<(String, String)> = Vec::new();
    for (index, document) in split_documents(stdout).into_iter().enumerate() {
        let mut source = None;
        let mut body = String::with_capacity(document.len());
        for line in document.split_inclusive('\n') {
            if source.is_none()
                && let Some(path) = line.trim_end().strip_prefix("# Source: ")
            {
                source = Some(path.trim().to_string());
                continue;
            }
            body.push_str(line);
        }
        if body.lines().all(|line| {
            let line = line.trim();
            line.is_empty() || line.starts_with('#')
        }) {
            continue;
        }
        let Some(source) = source else {
            return Err(LayoutError::NoSource { index: index + 1 });
        };
        documents.push((source, body));
    }
    let mut counts: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for (source, _) in &documents {
        *counts.entry(source.as_str()).or_default() += 1;
    }
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut files = Vec::with_capacity(documents.len());
    for (source, text) in &documents {
        let (path, sub_base) = place(source)?;
        let number = seen.entry(source.as_str()).or_default();
        *number += 1;
        let path = if counts[source.as_str()] > 1 && *number > 1 {
            numbered(&path, *number)
        } else {
            path
        };
        files.push(RenderedFile {
            source: source.clone(),
            path,
            sub_base,
            text: text.clone(),
        });
    }
    Ok(files)
}

/// Splits on `---` lines, as helm separates documents.
fn split_documents(text: &str) -> Vec<&str> {
    let mut documents = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    documents.push(&text[start..]);
    documents
}

/// `<stem>-<n>.<ext>`.
fn numbered(path: &str, number: usize) -> String {
    let (directory, name) = match path.rsplit_once('/') {
        Some((directory, name)) => (format!("{directory}/"), name),
        None => (String::new(), path),
    };
    match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => {
            format!("{directory}{stem}-{number}.{extension}")
        }
        _ => format!("{directory}{name}-{number}"),
    }
}

/// The sub-base of a file at `path` inside a chart's directory (`templates/a.yaml` → `""`,
/// `charts/db/templates/a.yaml` → `charts/db`, `charts/db/crds/c.yaml` → `charts/db/crds`), or
/// `None` for a path windlass would not write.
pub fn sub_base_of(path: &str) -> Option<String> {
    place(&format!("chart/{path}"))
        .ok()
        .map(|(_, sub_base)| sub_base)
}

/// The path inside the chart's directory and the sub-base of a `# Source:` path.
fn place(source: &str) -> Result<(String, String), LayoutError> {
    let bad = || LayoutError::BadSource {
        source_path: source.to_string(),
    };
    if source.starts_with('/') {
        return Err(bad());
    }
    let parts: Vec<&str> = source.split('/').collect();
    if parts
        .iter()
        .any(|part| part.is_empty() || *part == "." || *part == ".." || part.contains('\\'))
        || parts.len() < 2
    {
        return Err(bad());
    }
    let inside = &parts[1..];
    // The deepest `charts/<name>/` prefix is the subchart the file belongs to.
    let mut chart_prefix = 0;
    let mut index = 0;
    while index + 2 < inside.len() {
        if inside[index] == "charts" {
            chart_prefix = index + 2;
            index += 2;
        } else {
            break;
        }
    }
    let mut sub_base = inside[..chart_prefix].join("/");
    if inside.get(chart_prefix) == Some(&"crds") {
        sub_base = if sub_base.is_empty() {
            "crds".to_string()
        } else {
            format!("{sub_base}/crds")
        };
    }
    Ok((inside.join("/"), sub_base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_placed_in_sub_bases() {
        assert_eq!(
            place("app/templates/a.yaml").unwrap(),
            ("templates/a.yaml".into(), "".into())
        );
        assert_eq!(
            place("app/charts/db/templates/a.yaml").unwrap(),
            ("charts/db/templates/a.yaml".into(), "charts/db".into())
        );
        assert_eq!(
            place("app/charts/db/charts/x/templates/a.yaml").unwrap(),
            (
                "charts/db/charts/x/templates/a.yaml".into(),
                "charts/db/charts/x".into()
            )
        );
        assert_eq!(
            place("app/crds/c.yaml").unwrap(),
            ("crds/c.yaml".into(), "crds".into())
        );
        assert_eq!(
            place("app/charts/db/crds/c.yaml").unwrap(),
            ("charts/db/crds/c.yaml".into(), "charts/db/crds".into())
        );
        assert!(place("app/../x.yaml").is_err());
        assert!(place("/x.yaml").is_err());
    }

    #[test]
    fn several_documents_of_one_source_are_numbered() {
        let output = "---\n# Source: app/templates/a.yaml\nkind: A\n---\n# Source: app/templates/a.yaml\nkind: B\n---\n# Source: app/templates/b.yml\nkind: C\n";
        let files = split_output(output).unwrap();
        let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
        assert_eq!(
            paths,
            ["templates/a.yaml", "templates/a-2.yaml", "templates/b.yml"]
        );
        assert_eq!(files[1].text, "kind: B\n");
    }

    #[test]
    fn a_document_without_a_source_is_refused() {
        assert_eq!(
            split_output("---\nkind: A\n"),
            Err(LayoutError::NoSource { index: 2 })
        );
    }
}
