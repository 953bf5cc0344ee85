//! The sprig functions (Masterminds/sprig v3, which KOTS registers whole) that vendors' KOTS
//! releases use, written here with sprig's semantics. Every other sprig name is still a function
//! (as in KOTS, so a template using it parses), but calling it fails with
//! "sprig function X is not supported by windlass".

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use gotmpl::{FuncMap, TemplateError, Value};
use sha2::Digest;

use super::args::{
    GoParseError, boolean, count, failure, go_parse_int, go_quote, int, string, string_value,
    text_of, to_float64, to_int64,
};
use super::with_scope;

/// Every sprig v3 function name windlass does not implement.
pub const NOT_IMPLEMENTED: &[&str] = &[
    "abbrev",
    "abbrevboth",
    "adler32sum",
    "ago",
    "append",
    "bcrypt",
    "buildCustomCert",
    "camelcase",
    "cat",
    "ceil",
    "chunk",
    "compact",
    "concat",
    "date",
    "dateInZone",
    "dateModify",
    "date_in_zone",
    "date_modify",
    "decryptAES",
    "deepCopy",
    "deepEqual",
    "derivePassword",
    "dig",
    "duration",
    "durationRound",
    "encryptAES",
    "env",
    "expandenv",
    "first",
    "floor",
    "fromJson",
    "genCA",
    "genCAWithKey",
    "genPrivateKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "getHostByName",
    "hello",
    "htmlDate",
    "htmlDateInZone",
    "htpasswd",
    "initial",
    "initials",
    "isAbs",
    "kebabcase",
    "keys",
    "kindIs",
    "kindOf",
    "last",
    "maxf",
    "merge",
    "mergeOverwrite",
    "minf",
    "mustAppend",
    "mustChunk",
    "mustCompact",
    "mustDateModify",
    "must_date_modify",
    "mustDeepCopy",
    "mustFirst",
    "mustFromJson",
    "mustHas",
    "mustInitial",
    "mustLast",
    "mustMerge",
    "mustMergeOverwrite",
    "mustPrepend",
    "mustPush",
    "mustRegexFind",
    "mustRegexFindAll",
    "mustRegexMatch",
    "mustRegexReplaceAll",
    "mustRegexReplaceAllLiteral",
    "mustRegexSplit",
    "mustRest",
    "mustReverse",
    "mustSlice",
    "mustToDate",
    "mustToJson",
    "mustToPrettyJson",
    "mustToRawJson",
    "mustUniq",
    "mustWithout",
    "now",
    "omit",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    "pick",
    "pluck",
    "plural",
    "prepend",
    "push",
    "randAscii",
    "randBytes",
    "randInt",
    "randNumeric",
    "regexFind",
    "regexFindAll",
    "regexQuoteMeta",
    "regexReplaceAllLiteral",
    "regexSplit",
    "rest",
    "reverse",
    "round",
    "semver",
    "semverCompare",
    "seq",
    "set",
    "sha1sum",
    "sha512sum",
    "shuffle",
    "snakecase",
    "sortAlpha",
    "split",
    "splitn",
    "substr",
    "swapcase",
    "tuple",
    "toDate",
    "toDecimal",
    "toPrettyJson",
    "toRawJson",
    "toStrings",
    "typeIs",
    "typeIsLike",
    "typeOf",
    "uniq",
    "unixEpoch",
    "unset",
    "untitle",
    "urlJoin",
    "urlParse",
    "values",
    "without",
    "wrap",
    "wrapWith",
    "addf",
    "add1f",
    "subf",
    "mulf",
    "divf",
    "base",
    "clean",
    "dir",
    "ext",
    "has",
    "all",
    "any",
    "b32enc",
    "b32dec",
    "biggest",
    "fail",
    "nospace",
    "randAlpha",
    "trimall",
];

fn insert(
    map: &mut FuncMap,
    name: &str,
    function: impl Fn(&[Value]) -> Result<Value, TemplateError> + Send + Sync + 'static,
) {
    map.insert(name.to_string(), Arc::new(function));
}

/// sprig's `empty`: nil, false, 0, `""`, and empty lists and maps are empty.
pub fn is_empty(value: &Value) -> bool {
    !gotmpl::is_true(value)
}

/// Adds the sprig functions to `map`; the random ones draw from the render's [`super::Scope`].
pub fn add(map: &mut FuncMap) {
    for name in NOT_IMPLEMENTED {
        let message = format!("sprig function {name} is not supported by windlass");
        insert(map, name, move |_| {
            Err(TemplateError::Exec(message.clone()))
        });
    }
    add_strings(map);
    add_values(map);
    add_numbers(map);
    insert(map, "randAlphaNum", move |args| {
        count("randAlphaNum", args, 1, 1)?;
        let length =
            usize::try_from(int("randAlphaNum", args, 0)?.clamp(0, 1_000_000)).unwrap_or_default();
        let characters: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
        let picked = with_scope(|scope| super::random::pick(&*scope.entropy, &characters, length))?
            .map_err(|error| failure("randAlphaNum", error))?;
        Ok(string_value(picked))
    });
    insert(map, "uuidv4", move |args| {
        count("uuidv4", args, 0, 0)?;
        let mut bytes = [0u8; 16];
        with_scope(|scope| scope.entropy.fill(&mut bytes))?
            .map_err(|error| failure("uuidv4", error))?;
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        Ok(string_value(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    });
}

fn indent(spaces: i64, text: &str) -> String {
    let pad = " ".repeat(usize::try_from(spaces.clamp(0, 10_000)).unwrap_or_default());
    format!("{pad}{}", text.replace('\n', &format!("\n{pad}")))
}

fn add_strings(map: &mut FuncMap) {
    insert(map, "indent", |args| {
        count("indent", args, 2, 2)?;
        Ok(string_value(indent(
            int("indent", args, 0)?,
            string("indent", args, 1)?,
        )))
    });
    insert(map, "nindent", |args| {
        count("nindent", args, 2, 2)?;
        Ok(string_value(format!(
            "\n{}",
            indent(int("nindent", args, 0)?, string("nindent", args, 1)?)
        )))
    });
    insert(map, "quote", |args| {
        let quoted: Vec<String> = args
            .iter()
            .filter(|value| !matches!(value, Value::Nil))
            .map(|value| go_quote(&text_of(value)))
            .collect();
        Ok(string_value(quoted.join(" ")))
    });
    insert(map, "squote", |args| {
        let quoted: Vec<String> = args
            .iter()
            .filter(|value| !matches!(value, Value::Nil))
            .map(|value| format!("'{}'", text_of(value)))
            .collect();
        Ok(string_value(quoted.join(" ")))
    });
    insert(map, "replace", |args| {
        count("replace", args, 3, 3)?;
        let old = string("replace", args, 0)?;
        let new = string("replace", args, 1)?;
        let text = string("replace", args, 2)?;
        Ok(string_value(if old.is_empty() {
            go_replace_empty(text, new)
        } else {
            text.replace(old, new)
        }))
    });
    insert(map, "trim", |args| {
        count("trim", args, 1, 1)?;
        Ok(string_value(string("trim", args, 0)?.trim()))
    });
    insert(map, "trimAll", |args| {
        count("trimAll", args, 2, 2)?;
        let cutset: Vec<char> = string("trimAll", args, 0)?.chars().collect();
        Ok(string_value(
            string("trimAll", args, 1)?.trim_matches(cutset.as_slice()),
        ))
    });
    insert(map, "trimPrefix", |args| {
        count("trimPrefix", args, 2, 2)?;
        let prefix = string("trimPrefix", args, 0)?;
        let text = string("trimPrefix", args, 1)?;
        Ok(string_value(text.strip_prefix(prefix).unwrap_or(text)))
    });
    insert(map, "trimSuffix", |args| {
        count("trimSuffix", args, 2, 2)?;
        let suffix = string("trimSuffix", args, 0)?;
        let text = string("trimSuffix", args, 1)?;
        Ok(string_value(text.strip_suffix(suffix).unwrap_or(text)))
    });
    insert(map, "upper", |args| {
        count("upper", args, 1, 1)?;
        Ok(string_value(string("upper", args, 0)?.to_uppercase()))
    });
    insert(map, "lower", |args| {
        count("lower", args, 1, 1)?;
        Ok(string_value(string("lower", args, 0)?.to_lowercase()))
    });
    insert(map, "title", |args| {
        count("title", args, 1, 1)?;
        Ok(string_value(go_title(string("title", args, 0)?)))
    });
    insert(map, "contains", |args| {
        count("contains", args, 2, 2)?;
        Ok(Value::Bool(
            string("contains", args, 1)?.contains(string("contains", args, 0)?),
        ))
    });
    insert(map, "hasPrefix", |args| {
        count("hasPrefix", args, 2, 2)?;
        Ok(Value::Bool(
            string("hasPrefix", args, 1)?.starts_with(string("hasPrefix", args, 0)?),
        ))
    });
    insert(map, "hasSuffix", |args| {
        count("hasSuffix", args, 2, 2)?;
        Ok(Value::Bool(
            string("hasSuffix", args, 1)?.ends_with(string("hasSuffix", args, 0)?),
        ))
    });
    insert(map, "b64enc", |args| {
        count("b64enc", args, 1, 1)?;
        Ok(string_value(STANDARD.encode(text_of(&args[0]))))
    });
    insert(map, "b64dec", |args| {
        count("b64dec", args, 1, 1)?;
        // sprig prints Go's error in place of the text.
        Ok(string_value(
            match super::go_base64::decode(&text_of(&args[0])) {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(error) => error.to_string(),
            },
        ))
    });
    insert(map, "sha256sum", |args| {
        count("sha256sum", args, 1, 1)?;
        let digest = sha2::Sha256::digest(string("sha256sum", args, 0)?.as_bytes());
        Ok(string_value(
            digest
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect::<String>(),
        ))
    });
    insert(map, "repeat", |args| {
        count("repeat", args, 2, 2)?;
        let times = usize::try_from(int("repeat", args, 0)?.clamp(0, 1_000_000)).unwrap_or(0);
        let text = string("repeat", args, 1)?;
        if text.len().saturating_mul(times) > 16 * 1024 * 1024 {
            return Err(failure("repeat", "the result would be over 16 MiB"));
        }
        Ok(string_value(text.repeat(times)))
    });
    insert(map, "trunc", |args| {
        count("trunc", args, 2, 2)?;
        let length = int("trunc", args, 0)?;
        let text = string("trunc", args, 1)?;
        let characters: Vec<char> = text.chars().collect();
        let size = characters.len() as i64;
        // sprig's conditions, which cannot overflow (`trunc` of the smallest int keeps all).
        let kept: String = if length < 0 && size + length > 0 {
            characters[(size + length) as usize..].iter().collect()
        } else if length >= 0 && size > length {
            characters[..length as usize].iter().collect()
        } else {
            text.to_string()
        };
        Ok(string_value(kept))
    });
    insert(map, "join", |args| {
        count("join", args, 2, 2)?;
        let separator = string("join", args, 0)?;
        let parts: Vec<String> = match &args[1] {
            Value::List(items) => items.iter().map(text_of).collect(),
            other => vec![text_of(other)],
        };
        Ok(string_value(parts.join(separator)))
    });
    insert(map, "splitList", |args| {
        count("splitList", args, 2, 2)?;
        let separator = string("splitList", args, 0)?;
        let text = string("splitList", args, 1)?;
        let parts: Vec<Value> = if separator.is_empty() {
            text.chars().map(|c| string_value(c.to_string())).collect()
        } else {
            text.split(separator).map(string_value).collect()
        };
        Ok(Value::List(parts.into()))
    });
    insert(map, "regexMatch", |args| {
        count("regexMatch", args, 2, 2)?;
        let text = string("regexMatch", args, 1)?;
        // sprig ignores a pattern that does not compile: nothing matches it (mustRegexMatch
        // would fail).
        Ok(Value::Bool(
            regex::Regex::new(string("regexMatch", args, 0)?)
                .is_ok_and(|pattern| pattern.is_match(text)),
        ))
    });
    insert(map, "regexReplaceAll", |args| {
        count("regexReplaceAll", args, 3, 3)?;
        let pattern = regex::Regex::new(string("regexReplaceAll", args, 0)?)
            .map_err(|error| failure("regexReplaceAll", error))?;
        let text = string("regexReplaceAll", args, 1)?;
        let replacement = string("regexReplaceAll", args, 2)?;
        Ok(string_value(
            pattern.replace_all(text, replacement).into_owned(),
        ))
    });
    insert(map, "toString", |args| {
        count("toString", args, 1, 1)?;
        Ok(string_value(text_of(&args[0])))
    });
    insert(map, "toJson", |args| {
        count("toJson", args, 1, 1)?;
        // sprig ignores Go's error and prints "" instead.
        let mut json = String::new();
        Ok(string_value(match go_json(&args[0], &mut json) {
            Some(()) => json,
            None => String::new(),
        }))
    });
}

/// Go's `strings.Title` (sprig's `title`): the first letter of every word in title case, a word
/// starting after a separator — in ASCII anything but a letter, a digit or `_` (so `-`, `.`, `/`
/// separate, `_` does not), beyond ASCII white space.
fn go_title(text: &str) -> String {
    let is_separator = |character: char| {
        if character.is_ascii() {
            !(character.is_ascii_alphanumeric() || character == '_')
        } else {
            character.is_whitespace()
        }
    };
    let mut previous = ' ';
    text.chars()
        .map(|character| {
            let titled = if is_separator(previous) {
                go_to_title(character)
            } else {
                character
            };
            previous = character;
            titled
        })
        .collect()
}

/// Go's `unicode.ToTitle` of one character: its simple title-case mapping. That is its upper case
/// except for the Latin digraphs (`ǆ` → `ǅ`), the Greek letters with iota below (`ᾳ` → `ᾼ`) and
/// Georgian Mkhedruli (its own title case); a character whose upper case is several characters
/// (`ß`, `ﬁ`) stays as it is.
fn go_to_title(character: char) -> char {
    match character {
        'Ǆ' | 'ǅ' | 'ǆ' => 'ǅ',
        'Ǉ' | 'ǈ' | 'ǉ' => 'ǈ',
        'Ǌ' | 'ǋ' | 'ǌ' => 'ǋ',
        'Ǳ' | 'ǲ' | 'ǳ' => 'ǲ',
        // ᾀ–ᾇ → ᾈ–ᾏ, ᾐ–ᾗ → ᾘ–ᾟ, ᾠ–ᾧ → ᾨ–ᾯ; the title-case forms map to themselves.
        '\u{1F80}'..='\u{1FAF}' => char::from_u32(u32::from(character) | 0x8).unwrap_or(character),
        'ᾳ' => 'ᾼ',
        'ῃ' => 'ῌ',
        'ῳ' => 'ῼ',
        '\u{10D0}'..='\u{10FA}' | '\u{10FD}'..='\u{10FF}' => character,
        _ => {
            let mut upper = character.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(single), None) => single,
                _ => character,
            }
        }
    }
}

/// Go's `strings.Replace(text, "", new, -1)`: `new` before every character and at the end.
fn go_replace_empty(text: &str, new: &str) -> String {
    let mut replaced = String::from(new);
    for character in text.chars() {
        replaced.push(character);
        replaced.push_str(new);
    }
    replaced
}

/// Go's `encoding/json.Marshal` of a template value (sprig's `toJson`) into `json`: map keys in
/// order, floats as Go writes them (`1`, `0.5`, `1e+21`, `1e-7`), strings escaped as Go escapes
/// them. `None` where Go fails: a NaN or infinite float, a function.
fn go_json(value: &Value, json: &mut String) -> Option<()> {
    match value {
        Value::Nil => json.push_str("null"),
        Value::Bool(value) => json.push_str(if *value { "true" } else { "false" }),
        Value::Int(number) => json.push_str(&number.to_string()),
        Value::Uint(number) => json.push_str(&number.to_string()),
        Value::Float(number) => json.push_str(&go_json_float(*number)?),
        Value::String(text) => go_json_string(text, json),
        Value::List(items) => {
            json.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    json.push(',');
                }
                go_json(item, json)?;
            }
            json.push(']');
        }
        Value::Map(entries) => {
            json.push('{');
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    json.push(',');
                }
                go_json_string(key, json);
                json.push(':');
                go_json(item, json)?;
            }
            json.push('}');
        }
        Value::Function(_) => return None,
    }
    Some(())
}

/// A float as Go's `encoding/json` writes it: the shortest text that reads back the same, without
/// an exponent from 1e-6 up to 1e21 (`1` for 1.0), else with one (`1e+21`, `1.5e-7`).
fn go_json_float(number: f64) -> Option<String> {
    if !number.is_finite() {
        return None;
    }
    let magnitude = number.abs();
    if magnitude != 0.0 && !(1e-6..1e21).contains(&magnitude) {
        let text = format!("{number:e}");
        let (mantissa, exponent) = text.split_once('e')?;
        Some(if exponent.starts_with('-') {
            format!("{mantissa}e{exponent}")
        } else {
            format!("{mantissa}e+{exponent}")
        })
    } else {
        Some(number.to_string())
    }
}

/// A JSON string as Go's `encoding/json` writes it: `"`, `\` and control characters escaped
/// (`\n`, `\u001f`), and `<`, `>`, `&`, U+2028 and U+2029 as `\u` escapes for HTML.
fn go_json_string(text: &str, json: &mut String) {
    json.push('"');
    for character in text.chars() {
        match character {
            '"' => json.push_str("\\\""),
            '\\' => json.push_str("\\\\"),
            '\n' => json.push_str("\\n"),
            '\r' => json.push_str("\\r"),
            '\t' => json.push_str("\\t"),
            '\u{8}' => json.push_str("\\b"),
            '\u{c}' => json.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                json.push_str(&format!("\\u{:04x}", u32::from(character)));
            }
            control if u32::from(control) < 0x20 => {
                json.push_str(&format!("\\u{:04x}", u32::from(control)));
            }
            other => json.push(other),
        }
    }
    json.push('"');
}

fn add_values(map: &mut FuncMap) {
    insert(map, "default", |args| {
        count("default", args, 1, 2)?;
        match args.get(1) {
            Some(given) if !is_empty(given) => Ok(given.clone()),
            _ => Ok(args[0].clone()),
        }
    });
    insert(map, "empty", |args| {
        count("empty", args, 1, 1)?;
        Ok(Value::Bool(is_empty(&args[0])))
    });
    insert(map, "coalesce", |args| {
        Ok(args
            .iter()
            .find(|value| !is_empty(value))
            .cloned()
            .unwrap_or(Value::Nil))
    });
    insert(map, "ternary", |args| {
        count("ternary", args, 3, 3)?;
        Ok(if boolean("ternary", args, 2)? {
            args[0].clone()
        } else {
            args[1].clone()
        })
    });
    insert(map, "list", |args| Ok(Value::List(args.to_vec().into())));
    insert(map, "dict", |args| {
        let mut entries = BTreeMap::new();
        for pair in args.chunks(2) {
            let value = pair.get(1).cloned().unwrap_or(string_value(""));
            entries.insert(Arc::from(text_of(&pair[0]).as_str()), value);
        }
        Ok(Value::Map(Arc::new(entries)))
    });
    insert(map, "get", |args| {
        count("get", args, 2, 2)?;
        let key = string("get", args, 1)?;
        Ok(match &args[0] {
            Value::Map(entries) => entries.get(key).cloned().unwrap_or(string_value("")),
            _ => string_value(""),
        })
    });
    insert(map, "hasKey", |args| {
        count("hasKey", args, 2, 2)?;
        let key = string("hasKey", args, 1)?;
        Ok(Value::Bool(match &args[0] {
            Value::Map(entries) => entries.contains_key(key),
            _ => false,
        }))
    });
}

fn add_numbers(map: &mut FuncMap) {
    insert(map, "atoi", |args| {
        count("atoi", args, 1, 1)?;
        // Go's strconv.Atoi: 0 when it is not a number, the bound it passed when too large.
        Ok(Value::Int(
            go_parse_int(string("atoi", args, 0)?, 10).unwrap_or_else(GoParseError::value),
        ))
    });
    insert(map, "int", |args| {
        count("int", args, 1, 1)?;
        Ok(Value::Int(to_int64(&args[0])))
    });
    insert(map, "int64", |args| {
        count("int64", args, 1, 1)?;
        Ok(Value::Int(to_int64(&args[0])))
    });
    insert(map, "float64", |args| {
        count("float64", args, 1, 1)?;
        Ok(Value::Float(to_float64(&args[0])))
    });
    insert(map, "add", |args| {
        Ok(Value::Int(
            args.iter().map(to_int64).fold(0i64, i64::wrapping_add),
        ))
    });
    insert(map, "add1", |args| {
        count("add1", args, 1, 1)?;
        Ok(Value::Int(to_int64(&args[0]).wrapping_add(1)))
    });
    insert(map, "sub", |args| {
        count("sub", args, 2, 2)?;
        Ok(Value::Int(
            to_int64(&args[0]).wrapping_sub(to_int64(&args[1])),
        ))
    });
    insert(map, "mul", |args| {
        Ok(Value::Int(
            args.iter().map(to_int64).fold(1i64, i64::wrapping_mul),
        ))
    });
    insert(map, "div", |args| {
        count("div", args, 2, 2)?;
        let divisor = to_int64(&args[1]);
        if divisor == 0 {
            return Err(failure("div", "integer divide by zero"));
        }
        Ok(Value::Int(to_int64(&args[0]).wrapping_div(divisor)))
    });
    insert(map, "mod", |args| {
        count("mod", args, 2, 2)?;
        let divisor = to_int64(&args[1]);
        if divisor == 0 {
            return Err(failure("mod", "integer divide by zero"));
        }
        Ok(Value::Int(to_int64(&args[0]).wrapping_rem(divisor)))
    });
    insert(map, "until", |args| {
        count("until", args, 1, 1)?;
        let stop = int("until", args, 0)?;
        until_step("until", 0, stop, if stop < 0 { -1 } else { 1 })
    });
    insert(map, "untilStep", |args| {
        count("untilStep", args, 3, 3)?;
        until_step(
            "untilStep",
            int("untilStep", args, 0)?,
            int("untilStep", args, 1)?,
            int("untilStep", args, 2)?,
        )
    });
    insert(map, "max", |args| {
        count("max", args, 1, usize::MAX)?;
        Ok(Value::Int(args.iter().map(to_int64).max().unwrap_or(0)))
    });
    insert(map, "min", |args| {
        count("min", args, 1, usize::MAX)?;
        Ok(Value::Int(args.iter().map(to_int64).min().unwrap_or(0)))
    });
}

/// sprig's `untilStep`: the integers from `start` by `step` while they stay below `stop` (above
/// it, when `stop` is below `start`); empty when `step` does not go towards `stop`. Go's integers
/// wrap, so a step past the largest integer goes on from the smallest, as in sprig. At most
/// [`crate::engine::MAX_RANGE_ITERATIONS`] elements: more is an error (a `range` could not go
/// through them anyway).
fn until_step(name: &str, start: i64, stop: i64, step: i64) -> Result<Value, TemplateError> {
    let downwards = stop < start;
    if (downwards && step >= 0) || (!downwards && step <= 0) {
        return Ok(Value::List(Vec::new().into()));
    }
    let limit = crate::engine::MAX_RANGE_ITERATIONS;
    let mut numbers = Vec::new();
    let mut next = start;
    while (downwards && next > stop) || (!downwards && next < stop) {
        if numbers.len() as u64 >= limit {
            return Err(failure(
                name,
                format!("the list would have more than {limit} elements"),
            ));
        }
        numbers.push(Value::Int(next));
        next = next.wrapping_add(step);
    }
    Ok(Value::List(numbers.into()))
}
