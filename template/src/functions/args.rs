//! Go's rules for a template function's arguments, one helper per parameter type: how many there
//! are, and what converts (an untyped number constant converts to an integer parameter; anything
//! else of the wrong type is an error, as Go's `reflect` call would make it).

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

/// An `interface{}` number as sprig's `cast.ToInt64` reads it: integers, floats truncated, bools
/// as 0/1, numeric strings parsed, anything else 0.
pub fn to_int64(value: &Value) -> i64 {
    match value {
        Value::Int(number) => *number,
        Value::Uint(number) => *number as i64,
        Value::Float(number) => *number as i64,
        Value::Bool(value) => i64::from(*value),
        Value::String(text) => parse_go_int(text.trim()).unwrap_or(0),
        _ => 0,
    }
}

/// An `interface{}` number as `cast.ToFloat64` reads it.
pub fn to_float64(value: &Value) -> f64 {
    match value {
        Value::Int(number) => *number as f64,
        Value::Uint(number) => *number as f64,
        Value::Float(number) => *number,
        Value::Bool(value) => f64::from(u8::from(*value)),
        Value::String(text) => text.trim().parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

/// An integer written as Go's `strconv.ParseInt(text, 0, 64)` reads it (decimal, `0x`, `0o`, `0b`,
/// a leading `0` for octal, `_` separators after a prefix).
pub fn parse_go_int(text: &str) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = if let Some(rest) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        (16, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        (8, rest)
    } else if let Some(rest) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        (2, rest)
    } else if digits.len() > 1 && digits.starts_with('0') {
        (8, &digits[1..])
    } else {
        (10, digits)
    };
    let cleaned: String = if radix == 10 {
        digits.to_string()
    } else {
        digits.replace('_', "")
    };
    if cleaned.is_empty() {
        return None;
    }
    let magnitude = i128::from_str_radix(&cleaned, radix).ok()?;
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).ok()
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
