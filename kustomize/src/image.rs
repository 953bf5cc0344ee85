//! kustomize's `images:` transformer as v5.6 runs it: each entry, in order, rewrites every `image`
//! of every element of every list under a field named `containers` or `initContainers`, at any
//! depth, in every object except CustomResourceDefinitions (`api/filters/imagetag/legacy.go`);
//! `ephemeralContainers` are left alone. An image matches an entry when it matches the regular
//! expression `^<name>(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?$`, the name unescaped
//! (`api/image/image.go`, `IsImageMatched`), so a `.` in a name matches any character; names with
//! other regular-expression syntax are refused as unsupported. The replacement follows
//! `api/filters/imagetag/updater.go`: the name becomes `newName`, and `newTag` and `digest`
//! replace both the tag and the digest the image had.

use std::collections::HashMap;

use serde_json::Value;

/// One `images:` entry.
#[derive(Debug, Clone, Default)]
pub(crate) struct ImageEntry {
    pub name: String,
    pub new_name: String,
    pub new_tag: String,
    pub digest: String,
}

/// Characters that would make an entry's name a regular expression beyond a literal with `.`
/// wildcards.
pub(crate) fn has_regex_syntax(name: &str) -> bool {
    name.chars().any(|character| {
        matches!(
            character,
            '\\' | '^' | '$' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|'
        )
    })
}

fn is_tag_character(character: char) -> bool {
    character.is_ascii_alphanumeric() || matches!(character, '_' | '.' | '{' | '}' | '-')
}

/// `IsImageMatched(image, name)` for a name that is a literal with `.` wildcards.
pub(crate) fn is_image_matched(image: &str, name: &str) -> bool {
    let mut rest = image;
    for wanted in name.chars() {
        let Some(found) = rest.chars().next() else {
            return false;
        };
        let fits = if wanted == '.' {
            found != '\n'
        } else {
            found == wanted
        };
        if !fits {
            return false;
        }
        rest = &rest[found.len_utf8()..];
    }
    if let Some(tag) = rest.strip_prefix(':') {
        rest = tag.trim_start_matches(is_tag_character);
    }
    if let Some(digest) = rest.strip_prefix("@sha256:") {
        rest = digest.trim_start_matches(is_tag_character);
    }
    rest.is_empty()
}

/// kustomize's `image.Split`: name, tag and digest, looking for `:` and `@` only after the first
/// `/` (so a registry port is part of the name).
pub(crate) fn split(image: &str) -> (&str, &str, &str) {
    let slash = match image.find('/') {
        Some(index) if index > 0 => index,
        _ => 0,
    };
    let search = &image[slash..];
    let at = search.find('@');
    let colon = search.find(':');
    match (at, colon) {
        (None, None) => (image, "", ""),
        (Some(at), colon) if colon.is_none_or(|colon| at < colon) => {
            let at = at + slash;
            (&image[..at], "", &image[at + 1..])
        }
        (Some(at), Some(colon)) => {
            let (at, colon) = (at + slash, colon + slash);
            (&image[..colon], &image[colon + 1..at], &image[at + 1..])
        }
        (None, Some(colon)) => {
            let colon = colon + slash;
            (&image[..colon], &image[colon + 1..], "")
        }
        (Some(_), None) => unreachable!("handled by the digest-only arm"),
    }
}

impl ImageEntry {
    /// The image after this entry, or `None` when it does not match.
    fn rewrite(&self, image: &str) -> Option<String> {
        if !is_image_matched(image, &self.name) {
            return None;
        }
        let (name, mut tag, mut digest) = split(image);
        let name = if self.new_name.is_empty() {
            name
        } else {
            &self.new_name
        };
        match (self.new_tag.is_empty(), self.digest.is_empty()) {
            (false, false) => (tag, digest) = (&self.new_tag, &self.digest),
            (false, true) => (tag, digest) = (&self.new_tag, ""),
            (true, false) => (tag, digest) = ("", &self.digest),
            (true, true) => {}
        }
        let mut result = name.to_string();
        if !tag.is_empty() {
            result.push(':');
            result.push_str(tag);
        }
        if !digest.is_empty() {
            result.push('@');
            result.push_str(digest);
        }
        Some(result)
    }
}

/// A malformed `containers` / `initContainers` list, as kustomize rejects it.
#[derive(Debug)]
pub(crate) struct ContainerProblem(pub String);

/// The entries of one kustomization, with the result for every distinct image already seen (a
/// release has few distinct images and many fields holding them).
pub(crate) struct ImageTransformer<'a> {
    entries: &'a [ImageEntry],
    results: HashMap<String, Option<String>>,
}

impl<'a> ImageTransformer<'a> {
    pub fn new(entries: &'a [ImageEntry]) -> Self {
        ImageTransformer {
            entries,
            results: HashMap::new(),
        }
    }

    /// Every entry in order, each applied to what the earlier ones left.
    fn transform(&mut self, image: &str) -> Option<&String> {
        let entries = self.entries;
        self.results
            .entry(image.to_string())
            .or_insert_with(|| {
                let mut current: Option<String> = None;
                for entry in entries {
                    if let Some(next) = entry.rewrite(current.as_deref().unwrap_or(image)) {
                        current = Some(next);
                    }
                }
                current.filter(|result| result != image)
            })
            .as_ref()
    }

    /// Rewrites the images of one object.
    pub fn apply(&mut self, object: &mut Value) -> Result<(), ContainerProblem> {
        if self.entries.is_empty()
            || object.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
        {
            return Ok(());
        }
        self.walk(object)
    }

    fn walk(&mut self, value: &mut Value) -> Result<(), ContainerProblem> {
        match value {
            Value::Object(map) => {
                for (key, child) in map.iter_mut() {
                    self.walk(child)?;
                    if (key == "containers" || key == "initContainers")
                        && let Value::Array(containers) = child
                    {
                        for container in containers {
                            self.container(key, container)?;
                        }
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item)?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn container(&mut self, list: &str, container: &mut Value) -> Result<(), ContainerProblem> {
        let Value::Object(container) = container else {
            return Err(ContainerProblem(format!(
                "an element of `{list}` is not a mapping"
            )));
        };
        match container.get_mut("image") {
            Some(Value::String(image)) => {
                if let Some(result) = self.transform(image) {
                    *image = result.clone();
                }
                Ok(())
            }
            Some(Value::Array(_) | Value::Object(_)) => Err(ContainerProblem(format!(
                "an `image` in `{list}` is not a scalar"
            ))),
            _ => Ok(()),
        }
    }
}
