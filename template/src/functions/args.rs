//! Go's rules for a template function's arguments, one helper per parameter type: how many there
//! are, and what converts (an untyped number constant converts to an integer parameter; anything
//! else of the wrong type is an error, as Go's `reflect` call would make it). Also how Go reads
//! numbers out of text, which several functions share: `strconv.ParseInt`/`ParseUint`/`ParseBool`
//! and sprig's `cast` conversions.

use gotmpl::{TemplateError, Value};

/// A function's error, as the template engine reports it.
pub fn failure(name: &str, message: impl std::fmt::Display) -> TemplateError {
    TemplateError::Exec(format!("error calling {name}: {message}"))
}

/// Go's name for a value's type, as its error messages print it.
pub fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Uint(_) => "uint64",
        Value::Float(_) => "float64",
        Value::String(_) => "string",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        Value::Function(_) => "func",
    }
}

/// `args` has between `min` and `max` arguments.
pub fn count(name: &str, args: &[Value], min: usize, max: usize) -> Result<(), TemplateError> {
    if args.len() < min || args.len() > max {
        let want = if min == max {
            min.to_string()
        } else if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(TemplateError::Exec(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        )));
    }
    Ok(())
}

fn wrong(name: &str, expected: &str, got: &Value) -> TemplateError {
    TemplateError::Exec(format!(
        "wrong type for value in {name}; expected {expected}; got {}",
        go_type(got)
    ))
}

/// A `string` parameter.
pub fn string<'a>(name: &str, args: &'a [Value], index: usize) -> Result<&'a str, TemplateError> {
    match args.get(index) {
        Some(Value::String(text)) => Ok(text),
        Some(other) => Err(wrong(name, "string", other)),
        None => Err(TemplateError::Exec(format!(
            "wrong number of args for {name}: missing argument {}",
            index + 1
        ))),
    }
}

/// An `int` (or `int64`) parameter.
pub fn int(name: &str, args: &[Value], index: usize) -> Result<i64, TemplateError> {
    match args.get(index) {
        Some(Value::Int(number)) => Ok(*number),
        Some(Value::Uint(number)) => i64::try_from(*number)
            .map_err(|_| TemplateError::Exec(format!("{name}: {number} overflows int"))),
        Some(other) => Err(wrong(name, "int", other)),
        None => Err(TemplateError::Exec(format!(
            "wrong number of args for {name}: missing argument {}",
            index + 1
        ))),
    }
}

/// A `uint64` parameter (an untyped non-negative constant converts).
pub fn uint(name: &str, args: &[Value], index: usize) -> Result<u64, TemplateError> {
    match args.get(index) {
        Some(Value::Uint(number)) => Ok(*number),
        Some(Value::Int(number)) if *number >= 0 => Ok(*number as u64),
        Some(Value::Int(number)) => Err(TemplateError::Exec(format!(
            "{name}: {number} overflows uint64"
        ))),
        Some(other) => Err(wrong(name, "uint64", other)),
        None => Err(TemplateError::Exec(format!(
            "wrong number of args for {name}: missing argument {}",
            index + 1
        ))),
    }
}

/// A `bool` parameter.
pub fn boolean(name: &str, args: &[Value], index: usize) -> Result<bool, TemplateError> {
    match args.get(index) {
        Some(Value::Bool(value)) => Ok(*value),
        Some(other) => Err(wrong(name, "bool", other)),
        None => Err(TemplateError::Exec(format!(
            "wrong number of args for {name}: missing argument {}",
            index + 1
        ))),
    }
}

/// An `interface{}` parameter printed as Go's `fmt.Sprint` (sprig's `strval`): strings as they
/// are, nil as empty, everything else in Go's default format.
pub fn text_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.to_string(),
        Value::Nil => String::new(),
        other => other.to_string(),
    }
}

/// A string value.
pub fn string_value(text: impl Into<std::sync::Arc<str>>) -> Value {
    Value::String(text.into())
}

/// An `interface{}` number as sprig's `cast.ToInt64` reads it (spf13/cast v1.10, which KOTS
/// links; its number parsing is v1.9's): integers, floats truncated, bools as 0/1, strings as Go
/// integer literals after a decimal fraction is cut (`"3.0"` and `"3.9"` are 3), anything else 0
/// (so is a string that does not parse, `" 3"` included: cast trims nothing).
pub fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Int(number) => *number,
        Value::Uint(number) => *number as i64,
        Value::Float(number) => *number as i64,
        Value::Bool(value) => i64::from(*value),
        Value::String(text) => parse_go_int(&cast_trim_decimal(text)).unwrap_or(0),
        _ => 0,
    }
}

/// cast's `trimDecimal`: a text shaped `[-+]digits.digits` keeps its sign and integer part
/// (`"-8.3"` → `"-8"`, `".5"` → `"0"`, `"+."` → `"+0"`); any other text is left as it is.
fn cast_trim_decimal(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains('.') {
        return text.into();
    }
    let (sign, unsigned) = match text.as_bytes().first() {
        Some(b'+' | b'-') => text.split_at(1),
        _ => ("", text),
    };
    let (integer, fraction) =
        unsigned.split_at(unsigned.bytes().take_while(u8::is_ascii_digit).count());
    match fraction.strip_prefix('.') {
        Some(decimals) if decimals.bytes().all(|byte| byte.is_ascii_digit()) => {
            if integer.is_empty() {
                format!("{sign}0").into()
            } else {
                format!("{sign}{integer}").into()
            }
        }
        _ => text.into(),
    }
}

/// An `interface{}` number as `cast.ToFloat64` reads it (a string as `strconv.ParseFloat` reads
/// it, untrimmed).
pub fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Int(number) => *number as f64,
        Value::Uint(number) => *number as f64,
        Value::Float(number) => *number,
        Value::Bool(value) => f64::from(u8::from(*value)),
        Value::String(text) => text.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// An integer written as Go's `strconv.ParseInt(text, 0, 64)` reads it (decimal, `0x`, `0o`, `0b`,
/// a leading `0` for octal, `_` between digits); `None` where Go fails.
pub fn parse_go_int(text: &str) -> Option<i64> {
    go_parse_int(text, 0).ok()
}

/// Why Go's `strconv.ParseInt`/`ParseUint` refused a text, with the value they return beside the
/// error (which KOTS's `ParseInt`/`ParseUint` print).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoParseError<T> {
    /// Not an integer in that base (or not a base): Go returns 0.
    Invalid,
    /// Too large for the type: Go returns the nearest bound.
    OutOfRange(T),
}

impl<T: Default> GoParseError<T> {
    /// The value Go returns with the error.
    pub fn value(self) -> T {
        match self {
            GoParseError::Invalid => T::default(),
            GoParseError::OutOfRange(bound) => bound,
        }
    }
}

/// Go's `strconv.ParseUint(text, base, 64)`: `base` from 2 to 36, or 0 for Go's literal prefixes
/// (`0x`, `0o`, `0b`, a leading `0` for octal; `_` allowed between digits). No sign.
pub fn go_parse_uint(text: &str, base: i64) -> Result<u64, GoParseError<u64>> {
    let bytes = text.as_bytes();
    let prefixed = base == 0;
    let (radix, digits): (u64, &[u8]) = match (base, bytes) {
        (_, []) => return Err(GoParseError::Invalid),
        (0, [b'0', letter, _, ..]) if matches!(letter | 0x20, b'b' | b'o' | b'x') => {
            let radix = match letter | 0x20 {
                b'b' => 2,
                b'o' => 8,
                _ => 16,
            };
            (radix, &bytes[2..])
        }
        (0, [b'0', ..]) => (8, &bytes[1..]),
        (0, _) => (10, bytes),
        (2..=36, _) => (base as u64, bytes),
        _ => return Err(GoParseError::Invalid),
    };
    // The smallest number that overflows when multiplied by the radix.
    let cutoff = u64::MAX / radix + 1;
    let mut underscores = false;
    let mut number: u64 = 0;
    for &byte in digits {
        let digit = match byte {
            b'_' if prefixed => {
                underscores = true;
                continue;
            }
            b'0'..=b'9' => u64::from(byte - b'0'),
            _ if (byte | 0x20).is_ascii_lowercase() => u64::from((byte | 0x20) - b'a' + 10),
            _ => return Err(GoParseError::Invalid),
        };
        if digit >= radix {
            return Err(GoParseError::Invalid);
        }
        if number >= cutoff {
            return Err(GoParseError::OutOfRange(u64::MAX));
        }
        number = (number * radix)
            .checked_add(digit)
            .ok_or(GoParseError::OutOfRange(u64::MAX))?;
    }
    if underscores && !underscores_between_digits(text) {
        return Err(GoParseError::Invalid);
    }
    Ok(number)
}

/// Go's `strconv.ParseInt(text, base, 64)`: an optional sign, then [`go_parse_uint`].
pub fn go_parse_int(text: &str, base: i64) -> Result<i64, GoParseError<i64>> {
    let (negative, unsigned) = match text.as_bytes().first() {
        None => return Err(GoParseError::Invalid),
        Some(b'+') => (false, &text[1..]),
        Some(b'-') => (true, &text[1..]),
        Some(_) => (false, text),
    };
    let magnitude = match go_parse_uint(unsigned, base) {
        Ok(magnitude) | Err(GoParseError::OutOfRange(magnitude)) => magnitude,
        Err(GoParseError::Invalid) => return Err(GoParseError::Invalid),
    };
    let smallest_magnitude = 1u64 << 63;
    if !negative && magnitude >= smallest_magnitude {
        return Err(GoParseError::OutOfRange(i64::MAX));
    }
    if negative && magnitude > smallest_magnitude {
        return Err(GoParseError::OutOfRange(i64::MIN));
    }
    Ok(if negative {
        (magnitude as i64).wrapping_neg()
    } else {
        magnitude as i64
    })
}

/// Whether every `_` in a Go integer literal stands between two digits (a base prefix counting as
/// a digit), as Go's syntax wants.
fn underscores_between_digits(text: &str) -> bool {
    #[derive(PartialEq)]
    enum Last {
        Start,
        Digit,
        Underscore,
        Other,
    }
    let bytes = text.as_bytes();
    let bytes = match bytes.first() {
        Some(b'+' | b'-') => &bytes[1..],
        _ => bytes,
    };
    let (hex, mut last, rest) = match bytes {
        [b'0', letter, rest @ ..] if matches!(letter | 0x20, b'b' | b'o' | b'x') => {
            (letter | 0x20 == b'x', Last::Digit, rest)
        }
        _ => (false, Last::Start, bytes),
    };
    for &byte in rest {
        if byte.is_ascii_digit() || (hex && matches!(byte | 0x20, b'a'..=b'f')) {
            last = Last::Digit;
        } else if byte == b'_' {
            if last != Last::Digit {
                return false;
            }
            last = Last::Underscore;
        } else if last == Last::Underscore {
            return false;
        } else {
            last = Last::Other;
        }
    }
    last != Last::Underscore
}

/// Go's `strconv.ParseBool`.
pub fn parse_go_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Go's `%q` of a string: double-quoted, with Go's escapes.
pub fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            '\r' => quoted.push_str("\\r"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\u{b}' => quoted.push_str("\\v"),
            control if (control as u32) < 0x20 || control as u32 == 0x7f => {
                quoted.push_str(&format!("\\x{:02x}", control as u32));
            }
            control if control.is_control() => {
                let code = control as u32;
                if code <= 0xffff {
                    quoted.push_str(&format!("\\u{code:04x}"));
                } else {
                    quoted.push_str(&format!("\\U{code:08x}"));
                }
            }
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}
