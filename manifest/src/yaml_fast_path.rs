//! Fast paths from YAML text to `serde_json::Value` for the shape almost every Kubernetes
//! document has. The first, `block_lines`, reads block-style documents line by line without a
//! tokenizer, in about a quarter of the time of the second. What it declines goes to the second,
//! which handles mappings, sequences and scalars in any layout (flow collections, block scalars),
//! without anchors, aliases, tags, merge keys, duplicate keys or unusual keys: it builds the
//! value straight from granit-parser's events (the parser serde-saphyr itself uses). Both resolve
//! plain scalars the way serde-saphyr does with [`crate::documents::parse_options`]; a scalar that
//! might be a number other than a plain decimal is handed to serde-saphyr on its own. Anything
//! else makes [`parse`] return `None`, and the caller parses the whole document with
//! serde-saphyr, which also produces every error message. Parsing is the largest cost of a big
//! release; the paths are held equal to serde-saphyr by property tests (`yaml_fast_path/tests.rs`)
//! and, in debug builds, on every document parsed.

use granit_parser::{Event, Parser, ScalarStyle};
use serde_json::{Map, Value};

mod block_lines;

/// Documents larger than this take the general path (whose budgets then apply in full).
const MAX_TEXT_BYTES: usize = 1024 * 1024;
/// Deeper nesting takes the general path, which enforces its own depth limit.
const MAX_DEPTH: usize = 48;
/// More nodes than this take the general path, which enforces its own node limit.
const MAX_NODES: usize = 100_000;

/// The value of the single YAML document in `text`, or `None` when `text` is not in the shape
/// this path handles (including any YAML error).
pub(crate) fn parse(text: &str) -> Option<Value> {
    if text.len() > MAX_TEXT_BYTES {
        return None;
    }
    if let Some(value) = block_lines::parse(text) {
        return Some(value);
    }
    let options = granit_parser::options! { emit_comments: false };
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut open: Vec<Open> = Vec::new();
    let mut root = None;
    let mut documents = 0;
    let mut nodes = 0;
    while let Some(next) = parser.next_event() {
        let (event, _span) = next.ok()?;
        let node = match event {
            Event::StreamStart | Event::DocumentEnd => continue,
            Event::StreamEnd => break,
            // A `%YAML` directive, or a second document, takes the general path.
            Event::DocumentStart(_, Some(_)) => return None,
            Event::DocumentStart(_, None) => {
                documents += 1;
                if documents > 1 {
                    return None;
                }
                continue;
            }
            Event::MappingStart(_, 0, None) | Event::SequenceStart(_, 0, None)
                if open.len() >= MAX_DEPTH || open.last().is_some_and(Open::wants_key) =>
            {
                return None;
            }
            Event::MappingStart(_, 0, None) => {
                open.push(Open::Mapping(Map::new(), None));
                continue;
            }
            Event::SequenceStart(_, 0, None) => {
                open.push(Open::Sequence(Vec::new()));
                continue;
            }
            Event::MappingEnd | Event::SequenceEnd => match open.pop()? {
                Open::Mapping(map, None) => Value::Object(map),
                Open::Sequence(items) => Value::Array(items),
                Open::Mapping(_, Some(_)) => return None,
            },
            Event::Scalar(text, style, 0, None) => {
                if let Some(Open::Mapping(_, key @ None)) = open.last_mut() {
                    *key = Some(mapping_key(text, style)?);
                    continue;
                }
                scalar(text, style)?
            }
            _ => return None,
        };
        nodes += 1;
        if nodes > MAX_NODES {
            return None;
        }
        match open.last_mut() {
            None if root.is_none() => root = Some(node),
            None => return None,
            Some(Open::Sequence(items)) => items.push(node),
            Some(Open::Mapping(map, key)) => {
                let key = key.take()?;
                if map.contains_key(&key) {
                    return None;
                }
                map.insert(key, node);
            }
        }
    }
    if !open.is_empty() {
        return None;
    }
    root
}

/// A collection being built: a mapping with the key waiting for its value, or a sequence.
enum Open {
    Mapping(Map<String, Value>, Option<String>),
    Sequence(Vec<Value>),
}

impl Open {
    /// Whether the next node is a mapping key.
    fn wants_key(&self) -> bool {
        matches!(self, Open::Mapping(_, None))
    }
}

/// A mapping key: any quoted or block scalar, or a plain one that starts with a letter and is
/// not a null or boolean word (so that it means its own text, and merge keys `<<` are excluded).
fn mapping_key(text: std::borrow::Cow<'_, str>, style: ScalarStyle) -> Option<String> {
    if style != ScalarStyle::Plain {
        return Some(text.into_owned());
    }
    let starts_with_letter = text.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
    (starts_with_letter && null_or_bool(&text).is_none()).then(|| text.into_owned())
}

/// `null`, `true` or `false` for the plain spellings serde-saphyr gives those meanings (YAML 1.2
/// core booleans only, as `parse_options` asks).
fn null_or_bool(text: &str) -> Option<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Some(Value::Null),
        "true" | "True" | "TRUE" => Some(Value::Bool(true)),
        "false" | "False" | "FALSE" => Some(Value::Bool(false)),
        _ => None,
    }
}

/// The value of a scalar in a value position, or `None` when the document must take the
/// general path.
fn scalar(text: std::borrow::Cow<'_, str>, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return Some(Value::String(text.into_owned()));
    }
    if let Some(value) = null_or_bool(&text) {
        return Some(value);
    }
    let bytes = text.as_bytes();
    if bytes[0].is_ascii_alphabetic() {
        // No number starts with a letter (serde-saphyr keeps `inf` and `nan` as text).
        return Some(Value::String(text.into_owned()));
    }
    if bytes.iter().all(u8::is_ascii_digit) && (bytes.len() == 1 || bytes[0] != b'0') {
        // A plain decimal; too big for u64 is left to serde-saphyr.
        return text.parse::<u64>().ok().map(Value::from);
    }
    if might_be_number(bytes) {
        return resolved_alone(&text);
    }
    Some(Value::String(text.into_owned()))
}

/// Whether serde-saphyr might read this plain scalar as a number: it has a digit and only
/// characters numbers are written with (signs, `.`, `_`, hex digits, radix and exponent
/// letters), or it starts like `.inf` and `.nan` do.
fn might_be_number(bytes: &[u8]) -> bool {
    let numeral = bytes.iter().any(u8::is_ascii_digit)
        && bytes.iter().all(|byte| {
            matches!(byte,
                b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' | b'x' | b'X' | b'o' | b'O'
                    | b'+' | b'-' | b'.' | b'_')
        });
    let non_finite = bytes[0] == b'.' || (bytes.len() > 1 && bytes[1] == b'.');
    numeral || non_finite
}

/// The value serde-saphyr gives `text` as a document of its own, which for a plain scalar of
/// these characters is the value it has inside any document. `None` (so the whole document takes
/// the general path) for text that would not read back as one scalar, and for errors.
fn resolved_alone(text: &str) -> Option<Value> {
    let alone_is_same = !text.starts_with("---")
        && !text.starts_with("...")
        && !text
            .bytes()
            .any(|byte| byte.is_ascii_whitespace() || byte == b'#');
    if !alone_is_same {
        return None;
    }
    let value: Value =
        serde_saphyr::from_str_with_options(text, crate::documents::parse_options()).ok()?;
    (!value.is_array() && !value.is_object()).then_some(value)
}

#[cfg(test)]
mod tests;
