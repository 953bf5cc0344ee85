//! The first and fastest of the YAML fast paths: a reader of block-style YAML line by line, for
//! the layout almost every Kubernetes manifest has — `key: value` lines, `- item` lines,
//! indentation with spaces, plain scalars and one-line quoted scalars, comments, and `[]`/`{}` —
//! without going through a tokenizer at all. Anything else (flow collections with content, block
//! scalars, multi-line scalars, anchors, aliases, tags, quoted or unusual keys, tabs, control
//! characters, escapes other than the common ones) makes [`parse`] return `None`, and the caller
//! tries the event-based fast path, then serde-saphyr. Scalars are resolved by the same functions
//! as the event-based path, so both give serde-saphyr's values; the property tests in
//! `tests.rs` hold this reader to serde-saphyr on its own.

use std::borrow::Cow;

use granit_parser::ScalarStyle;
use serde_json::{Map, Value};

use super::{MAX_DEPTH, MAX_NODES, MAX_TEXT_BYTES, mapping_key, scalar};

/// One line with content: its indentation in spaces and the text after it.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    text: &'a str,
}

/// The value of the single block-style YAML document in `text`, or `None` when `text` has
/// anything this reader does not handle (including any YAML error).
pub(super) fn parse(text: &str) -> Option<Value> {
    if text.len() > MAX_TEXT_BYTES || has_unsupported_characters(text) {
        return None;
    }
    let mut lines = Vec::with_capacity(text.len() / 16);
    for line in text.split('\n') {
        let content = line.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        lines.push(Line {
            indent: line.len() - content.len(),
            text: content,
        });
    }
    let first = *lines.first()?;
    let mut reader = Reader {
        lines,
        next: 0,
        nodes: 0,
    };
    let root = reader.block(first.indent, 0)?;
    (reader.next == reader.lines.len()).then_some(root)
}

/// Tabs, carriage returns, control characters and the characters YAML treats specially (byte
/// order mark, the Unicode line separators, NEL) send the document to the other paths.
fn has_unsupported_characters(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes
        .iter()
        .any(|&byte| (byte < 0x20 && byte != b'\n') || byte == 0x7f)
    {
        return true;
    }
    !bytes.is_ascii()
        && text.chars().any(|character| {
            matches!(
                character,
                '\u{80}'
                    ..='\u{9f}' | '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{fffe}' | '\u{ffff}'
            )
        })
}

/// The reading position over the document's content lines.
struct Reader<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
    nodes: usize,
}

impl<'a> Reader<'a> {
    /// The content line about to be read, if any.
    fn peek(&self) -> Option<Line<'a>> {
        self.lines.get(self.next).copied()
    }

    /// Counts one more node, failing past the node limit.
    fn count_node(&mut self) -> Option<()> {
        self.nodes += 1;
        (self.nodes <= MAX_NODES).then_some(())
    }

    /// The block collection whose first line is the next one, at `indent`.
    fn block(&mut self, indent: usize, depth: usize) -> Option<Value> {
        if depth >= MAX_DEPTH {
            return None;
        }
        let line = self.peek()?;
        if line.indent != indent {
            return None;
        }
        if is_entry(line.text) {
            self.sequence(indent, depth)
        } else {
            self.mapping(indent, depth)
        }
    }

    /// A block sequence: `- item` lines at `indent`, up to the first line that is not one.
    fn sequence(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut items = Vec::new();
        while let Some(line) = self.peek() {
            if line.indent < indent || (line.indent == indent && !is_entry(line.text)) {
                break;
            }
            if line.indent > indent {
                return None;
            }
            let rest = line.text[1..].trim_start_matches(' ');
            let item = if rest.is_empty() || rest.starts_with('#') {
                self.next += 1;
                self.nested_or_null(indent, depth)?
            } else if is_entry(rest) {
                // `- - item`: a sequence written inline in a sequence.
                return None;
            } else if key_end(rest).is_some() {
                // `- key: value`: a mapping whose lines sit at the column of its first key.
                let column = indent + (line.text.len() - rest.len());
                self.lines[self.next] = Line {
                    indent: column,
                    text: rest,
                };
                self.mapping(column, depth + 1)?
            } else {
                self.next += 1;
                let value = inline_value(rest)?;
                self.after_inline_value(indent)?;
                value
            };
            self.count_node()?;
            items.push(item);
        }
        Some(Value::Array(items))
    }

    /// A block mapping: `key: value` lines at `indent`, up to the first line less indented.
    fn mapping(&mut self, indent: usize, depth: usize) -> Option<Value> {
        let mut map = Map::new();
        while let Some(line) = self.peek() {
            if line.indent < indent {
                break;
            }
            if line.indent > indent || is_entry(line.text) {
                return None;
            }
            let end = key_end(line.text)?;
            let key = mapping_key(Cow::Borrowed(&line.text[..end]), ScalarStyle::Plain)?;
            if map.contains_key(&key) {
                return None;
            }
            self.next += 1;
            let rest = line.text[end + 1..].trim_start_matches(' ');
            let value = if rest.is_empty() || rest.starts_with('#') {
                match self.peek() {
                    // `key:` then `- item` lines at the key's own column.
                    Some(next) if next.indent == indent && is_entry(next.text) => {
                        self.sequence(indent, depth + 1)?
                    }
                    _ => self.nested_or_null(indent, depth)?,
                }
            } else {
                let value = inline_value(rest)?;
                self.after_inline_value(indent)?;
                value
            };
            self.count_node()?;
            map.insert(key, value);
        }
        Some(Value::Object(map))
    }

    /// The collection on the lines after a node with no inline value, when they are more
    /// indented than `indent`; otherwise the node is empty (null).
    fn nested_or_null(&mut self, indent: usize, depth: usize) -> Option<Value> {
        match self.peek() {
            Some(next) if next.indent > indent => self.block(next.indent, depth + 1),
            _ => Some(Value::Null),
        }
    }

    /// After a scalar on the line of its key or dash, a more indented line would continue it
    /// (a multi-line scalar), which this reader leaves to the other paths.
    fn after_inline_value(&self, indent: usize) -> Option<()> {
        match self.peek() {
            Some(next) if next.indent > indent => None,
            _ => Some(()),
        }
    }
}

/// Whether a line's text starts a sequence entry (`-` alone or followed by a space).
fn is_entry(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.first() == Some(&b'-') && bytes.get(1).is_none_or(|&byte| byte == b' ')
}

/// Where the `:` ending a plain key is, when `text` starts with `key:` followed by a space or
/// the end of the line and the key is a letter followed by letters, digits and `._/-`.
fn key_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if !bytes.first()?.is_ascii_alphabetic() {
        return None;
    }
    let end = bytes.iter().position(|&byte| {
        !(byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'/' | b'-'))
    })?;
    let colon_ends_key = bytes[end] == b':' && bytes.get(end + 1).is_none_or(|&byte| byte == b' ');
    colon_ends_key.then_some(end)
}

/// The value written after `key: ` or `- ` on one line (never empty, never a comment).
fn inline_value(text: &str) -> Option<Value> {
    match text.as_bytes()[0] {
        b'"' => {
            let (value, rest) = double_quoted(&text[1..])?;
            only_comment_after(rest)?;
            Some(Value::String(value))
        }
        b'\'' => {
            let (value, rest) = single_quoted(&text[1..])?;
            only_comment_after(rest)?;
            Some(Value::String(value))
        }
        b'[' | b'{' => {
            let empty = if text.starts_with("[]") {
                Value::Array(Vec::new())
            } else if text.starts_with("{}") {
                Value::Object(Map::new())
            } else {
                return None;
            };
            only_comment_after(&text[2..])?;
            Some(empty)
        }
        b'&' | b'*' | b'!' | b'|' | b'>' | b'%' | b'@' | b'`' | b',' | b']' | b'}' | b'?'
        | b':' | b'#' => None,
        b'-' if is_entry(text) => None,
        _ => {
            let plain = match text.find(" #") {
                Some(comment) => &text[..comment],
                None => text,
            }
            .trim_end_matches(' ');
            if plain.ends_with(':') || plain.contains(": ") {
                return None;
            }
            scalar(Cow::Borrowed(plain), ScalarStyle::Plain)
        }
    }
}

/// What may follow a quoted scalar or an empty collection on its line: spaces, then a comment
/// after at least one space.
fn only_comment_after(rest: &str) -> Option<()> {
    let trimmed = rest.trim_start_matches(' ');
    let fine = trimmed.is_empty() || (trimmed.len() < rest.len() && trimmed.starts_with('#'));
    fine.then_some(())
}

/// A double-quoted scalar that ends on this line (`text` starts after the opening quote): its
/// value and the text after the closing quote. Only the escapes `\\ \" \/ \n \t \r` are read.
fn double_quoted(text: &str) -> Option<(String, &str)> {
    let bytes = text.as_bytes();
    let mut value = String::new();
    let mut copied_up_to = 0;
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => {
                value.push_str(&text[copied_up_to..at]);
                return Some((value, &text[at + 1..]));
            }
            b'\\' => {
                value.push_str(&text[copied_up_to..at]);
                let unescaped = match bytes.get(at + 1)? {
                    b'\\' => '\\',
                    b'"' => '"',
                    b'/' => '/',
                    b'n' => '\n',
                    b't' => '\t',
                    b'r' => '\r',
                    _ => return None,
                };
                value.push(unescaped);
                at += 2;
                copied_up_to = at;
            }
            _ => at += 1,
        }
    }
    None
}

/// A single-quoted scalar that ends on this line (`text` starts after the opening quote): its
/// value (`''` is one quote) and the text after the closing quote.
fn single_quoted(text: &str) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut rest = text;
    loop {
        let quote = rest.find('\'')?;
        value.push_str(&rest[..quote]);
        rest = &rest[quote + 1..];
        match rest.strip_prefix('\'') {
            Some(after_doubled) => {
                value.push('\'');
                rest = after_doubled;
            }
            None => return Some((value, rest)),
        }
    }
}
