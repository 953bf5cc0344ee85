//! Describing a YAML parse error in a file that may hold credentials (`--registries`, the proxy's
//! configuration) without quoting the file. A parser's message can carry the offending value (`invalid
//! type: string "…"`) and its snippet carries the whole line; both would put a password into an
//! error, the terminal and the event log. [`YamlProblem`] keeps only what locates the problem: the
//! line and column, the path of keys leading to that line (keys, never values), and the parser's
//! message with any value taken out.

use std::fmt;

/// Where a YAML problem is and what kind it is, with nothing quoted from the file but key names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlProblem {
    /// The file, as the user named it.
    pub file: String,
    /// Line (from 1) and column (from 1), when the parser knew them.
    pub at: Option<(u64, u64)>,
    /// The keys leading to that line, e.g. `registries.vendor.example.password`.
    pub key_path: Option<String>,
    /// What is wrong, e.g. `unknown field `pasword`, expected …` or `not valid YAML`.
    pub problem: String,
}

impl fmt::Display for YamlProblem {
    /// `registries.yaml:4:15: registries.a.example.password: invalid type, expected a string`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some((line, column)) = self.at {
            write!(f, ":{line}:{column}")?;
        }
        f.write_str(": ")?;
        if let Some(key_path) = &self.key_path {
            write!(f, "{key_path}: ")?;
        }
        f.write_str(&self.problem)
    }
}

/// The problem the parser reported as `message` (its plain message, without a snippet) at `at`
/// (line and column from 1) in `text`, read from `file`, with every value taken out.
pub fn yaml_problem(file: &str, text: &str, message: &str, at: Option<(u64, u64)>) -> YamlProblem {
    let line = at.and_then(|(line, _)| usize::try_from(line).ok());
    let key_path = line.and_then(|line| key_path_at(text, line));
    let offending_value = line.and_then(|line| value_on_line(text, line));
    YamlProblem {
        file: file.to_owned(),
        at,
        key_path,
        problem: without_values(message, offending_value.as_deref()),
    }
}

/// The serde or parser message, keeping only what cannot be a value from the file.
fn without_values(message: &str, offending_value: Option<&str>) -> String {
    const NOT_VALID: &str = "not valid YAML";
    let first_line = message.lines().next().unwrap_or("").trim();
    let message = first_line
        .find(" at line ")
        .map_or(first_line, |cut| &first_line[..cut])
        .trim();
    // Field names are keys: serde quotes the key and lists the fields the type has.
    if ["unknown field `", "missing field `", "duplicate field `"]
        .iter()
        .any(|prefix| message.starts_with(prefix))
    {
        return message.to_owned();
    }
    // `invalid type: string "…", expected …`: the value sits between the colon and the last
    // `, expected` (what is expected comes from the type, not the file).
    for kind in ["invalid type", "invalid value", "unknown variant"] {
        if message.starts_with(kind) {
            return match message.rfind(", expected ") {
                Some(cut) => format!("{kind}{}", &message[cut..]),
                None => kind.to_owned(),
            };
        }
    }
    if message.starts_with("invalid length ") {
        return message.to_owned();
    }
    // Anything else is the parser's own text; keep it only if it quotes nothing.
    let quotes = message.contains(['"', '\'', '`']);
    let echoes_the_line =
        offending_value.is_some_and(|value| value.chars().count() >= 3 && message.contains(value));
    if message.is_empty() || quotes || echoes_the_line {
        NOT_VALID.to_owned()
    } else {
        format!("{NOT_VALID}: {message}")
    }
}

/// One line's indentation, whether it is a list item, and its key (if it starts with `key:`).
struct Line<'a> {
    /// Where the content starts (after `- ` on a list item).
    indent: usize,
    /// Where the `-` of a list item is (`indent` otherwise).
    dash: usize,
    list_item: bool,
    key: Option<&'a str>,
}

fn classify(line: &str) -> Option<Line<'_>> {
    let content = line.trim_start_matches(' ');
    let trimmed = content.trim_end();
    if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("---") {
        return None;
    }
    let dash = line.len() - content.len();
    let mut indent = dash;
    let mut rest = trimmed;
    let mut list_item = false;
    if rest == "-" || rest.starts_with("- ") {
        list_item = true;
        let after = rest[1..].trim_start_matches(' ');
        indent += rest.len() - after.len();
        rest = after;
    }
    Some(Line {
        indent,
        dash,
        list_item,
        key: key_of(rest),
    })
}

/// The key a line starts with (`key:` or `key: value`), unquoted; `None` if it does not start
/// with one.
fn key_of(rest: &str) -> Option<&str> {
    let (key, quoted) = match rest.chars().next()? {
        quote @ ('"' | '\'') => {
            let end = rest[1..].find(quote)? + 1;
            (&rest[1..end], &rest[end + 1..])
        }
        '{' | '[' | '&' | '*' | '!' | '|' | '>' => return None,
        _ => {
            let end = rest
                .find(": ")
                .or_else(|| rest.ends_with(':').then(|| rest.len() - 1))?;
            (rest[..end].trim_end(), &rest[end..])
        }
    };
    (quoted.starts_with(':') && !key.is_empty()).then_some(key)
}

/// The keys leading to `line` (from 1), by indentation: the line's own key, then the key of each
/// less indented line above it. Lines past the end or without content count as the nearest line
/// with content above them (a parser often reports an unclosed quote at the end of the input).
fn key_path_at(text: &str, line: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut index = line.min(lines.len()).checked_sub(1)?;
    let current = loop {
        if let Some(classified) = classify(lines[index]) {
            break classified;
        }
        index = index.checked_sub(1)?;
    };
    let mut keys: Vec<&str> = Vec::new();
    keys.extend(current.key);
    if current.list_item {
        keys.push("[]");
    }
    let mut indent = current.dash;
    for above in lines[..index].iter().rev() {
        let Some(above) = classify(above) else {
            continue;
        };
        if above.list_item {
            if above.dash >= indent {
                continue;
            }
            // `- parent:` holds the line; `- sibling: x` only says it is in a list item.
            if above.indent < indent {
                keys.extend(above.key);
            }
            keys.push("[]");
            indent = above.dash;
        } else if above.indent < indent {
            let Some(key) = above.key else {
                continue;
            };
            keys.push(key);
            indent = above.indent;
        }
        if indent == 0 {
            break;
        }
    }
    if keys.is_empty() {
        return None;
    }
    keys.reverse();
    // `[]` attaches to the key before it: `images.rules[].path`.
    let mut path = String::new();
    for key in keys {
        if key == "[]" {
            path.push_str("[]");
        } else {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
        }
    }
    Some(path)
}

/// What follows the key on `line` (from 1), trimmed, if anything.
fn value_on_line(text: &str, line: usize) -> Option<String> {
    let raw = text.lines().nth(line.checked_sub(1)?)?;
    let content = raw.trim();
    let value = match key_of(content.trim_start_matches("- ")) {
        Some(_) => content.split_once(':').map_or("", |(_, value)| value),
        None => content,
    };
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: &str = "registries:\n  vendor.example:\n    endpoint: http://127.0.0.1:1\n    username: reader\n    password: \"hunter2-secret\n";

    #[test]
    fn a_syntax_error_names_the_keys_not_the_value() {
        let problem = yaml_problem(
            "r.yaml",
            SETTINGS,
            "while scanning a quoted scalar, found unexpected end of stream at line 6 column 1",
            Some((6, 1)),
        );
        assert_eq!(
            problem.key_path.as_deref(),
            Some("registries.vendor.example.password")
        );
        assert!(!problem.to_string().contains("hunter2"), "{problem}");
        assert!(
            problem
                .to_string()
                .starts_with("r.yaml:6:1: registries.vendor.example.password: "),
            "{problem}"
        );
    }

    #[test]
    fn values_are_taken_out_of_serde_messages() {
        let problem = yaml_problem(
            "r.yaml",
            SETTINGS,
            "invalid type: string \"hunter2-secret, expected x\", expected struct HostEntry",
            Some((4, 15)),
        );
        assert_eq!(problem.problem, "invalid type, expected struct HostEntry");
        assert_eq!(
            problem.key_path.as_deref(),
            Some("registries.vendor.example.username")
        );
        let problem = yaml_problem(
            "r.yaml",
            "a: b\n",
            "unknown variant `hunter2`, expected `x`",
            None,
        );
        assert_eq!(problem.problem, "unknown variant, expected `x`");
        let problem = yaml_problem(
            "r.yaml",
            "a:\n  pasword_file: x\n",
            "unknown field `pasword_file`, expected one of `endpoint`, `password_file`",
            Some((2, 3)),
        );
        assert!(problem.problem.contains("pasword_file"), "{problem}");
        let problem = yaml_problem(
            "r.yaml",
            "a: hunter2-secret: x\n",
            "mapping values are not allowed here: hunter2-secret: x",
            Some((1, 18)),
        );
        assert_eq!(problem.problem, "not valid YAML");
    }

    #[test]
    fn list_items_show_as_brackets() {
        let text = "images:\n  rules:\n    - kind: A\n      path: spec..image\n";
        assert_eq!(key_path_at(text, 4).as_deref(), Some("images.rules[].path"));
        assert_eq!(key_path_at(text, 3).as_deref(), Some("images.rules[].kind"));
    }
}
