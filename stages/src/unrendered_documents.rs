//! The KOTS documents a release file's render leaves alone: a `kots.io` `Config`, `ConfigValues`,
//! `Installation` or `License`. KOTS drops them from a file before it renders the rest of the file
//! whole (and renders a Config on its own, with its values applied); an ordinary document of
//! another group that happens to share a kind name (an operator's `Installation`) is rendered.

use std::sync::LazyLock;

/// A document's `kind:` line naming a KOTS kind that is never rendered with the release's files.
static KIND_NOT_RENDERED: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r#"(?m)^kind:[ \t]*["']?(Config|ConfigValues|Installation|License)["']?[ \t]*(#.*)?$"#,
    )
    .unwrap_or_else(|error| unreachable!("the pattern is valid: {error}"))
});

/// A document's `apiVersion:` line naming KOTS's group.
static KOTS_API_VERSION: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"(?m)^apiVersion:[ \t]*["']?kots\.io/v1beta[12]["']?[ \t]*(#.*)?$"#)
        .unwrap_or_else(|error| unreachable!("the pattern is valid: {error}"))
});

/// For a file holding a KOTS `Config`, `ConfigValues`, `Installation` or `License` (by its
/// `kots.io` apiVersion and kind: another group's `Installation`, such as an operator's, is an
/// ordinary document): the file's text with those documents blanked line for line (KOTS drops
/// them before it renders the rest of the file whole; the blank lines keep the rest's line
/// numbers in messages), and those documents, to be put back unrendered after the rest. `None`
/// when the file holds none.
pub fn without_unrendered_kinds(text: &str) -> Option<(String, Vec<&str>)> {
    if !KIND_NOT_RENDERED.is_match(text) || !KOTS_API_VERSION.is_match(text) {
        return None;
    }
    // Each document's byte range: separated by `---` lines.
    let mut documents = Vec::new();
    let mut start = 0;
    let mut position = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            documents.push(start..position);
            start = position + line.len();
        }
        position += line.len();
    }
    documents.push(start..text.len());
    let unrendered: Vec<std::ops::Range<usize>> = documents
        .into_iter()
        .filter(|range| {
            let document = &text[range.clone()];
            KIND_NOT_RENDERED.is_match(document) && KOTS_API_VERSION.is_match(document)
        })
        .collect();
    if unrendered.is_empty() {
        return None;
    }
    let mut blanked = String::with_capacity(text.len());
    let mut end_of_previous = 0;
    for range in &unrendered {
        blanked.push_str(&text[end_of_previous..range.start]);
        blanked.extend(text[range.clone()].matches('\n'));
        end_of_previous = range.end;
    }
    blanked.push_str(&text[end_of_previous..]);
    let documents = unrendered.into_iter().map(|range| &text[range]).collect();
    Some((blanked, documents))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str =
        "apiVersion: kots.io/v1beta1\nkind: Config\nspec:\n  groups: []  # repl{{ untouched }}\n";
    const MAP: &str =
        "apiVersion: v1\nkind: ConfigMap\ndata:\n  port: 'repl{{ ConfigOption \"port\" }}'\n";

    #[test]
    fn a_kots_document_is_blanked_line_for_line_and_kept_aside() {
        let text = format!("{MAP}---\n{CONFIG}---\n{MAP}");
        let (blanked, kept) = without_unrendered_kinds(&text).unwrap();
        assert_eq!(kept, [CONFIG]);
        assert_eq!(blanked, format!("{MAP}---\n\n\n\n\n---\n{MAP}"));
        assert_eq!(blanked.lines().count(), text.lines().count());
    }

    #[test]
    fn another_groups_kind_of_the_same_name_is_an_ordinary_document() {
        let tigera = "apiVersion: operator.tigera.io/v1\nkind: Installation\nspec:\n  registry: 'repl{{ ConfigOption \"registry\" }}'\n";
        assert_eq!(without_unrendered_kinds(tigera), None);
        // Beside a KOTS License, only the License is set aside.
        let license = "apiVersion: kots.io/v1beta1\nkind: License\nspec:\n  appSlug: shop\n";
        let text = format!("{tigera}---\n{license}");
        let (blanked, kept) = without_unrendered_kinds(&text).unwrap();
        assert_eq!(kept, [license]);
        assert!(blanked.starts_with(tigera), "{blanked}");
    }

    #[test]
    fn quoted_kinds_and_comments_are_recognised() {
        let text = "apiVersion: \"kots.io/v1beta1\"  # KOTS\nkind: 'ConfigValues'\nspec: {}\n";
        assert_eq!(without_unrendered_kinds(text).unwrap().1, [text]);
    }
}
