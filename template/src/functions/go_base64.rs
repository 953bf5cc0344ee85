//! Go's `base64.StdEncoding.DecodeString`, which KOTS's `Base64Decode` and `ConfigOptionData` and
//! sprig's `b64dec` call: the standard alphabet with `=` padding, where `\r` and `\n` anywhere are
//! skipped (so a value written as a YAML block, or `base64` output wrapped at 76 columns, decodes)
//! and the unused bits of the last character need not be zero. A failure gives the byte offset Go
//! reports (`illegal base64 data at input byte N`), which sprig's `b64dec` prints.

/// Go's `base64.CorruptInputError`: where the input stopped being base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CorruptInput(pub usize);

impl std::fmt::Display for CorruptInput {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "illegal base64 data at input byte {}", self.0)
    }
}

/// The six bits a character of the standard alphabet stands for.
fn sextet(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

fn is_line_break(byte: u8) -> bool {
    byte == b'\n' || byte == b'\r'
}

/// The index of the first byte from `at` that is not a line break.
fn skip_line_breaks(input: &[u8], mut at: usize) -> usize {
    while input.get(at).copied().is_some_and(is_line_break) {
        at += 1;
    }
    at
}

/// Appends the bytes `count` sextets (2 to 4) stand for.
fn push_group(decoded: &mut Vec<u8>, sextets: [u8; 4], count: usize) {
    let bits = sextets
        .iter()
        .fold(0u32, |bits, &sextet| (bits << 6) | u32::from(sextet));
    let bytes = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
    decoded.extend_from_slice(&bytes[..count - 1]);
}

/// Decodes `text` as Go's `base64.StdEncoding.DecodeString` does.
pub fn decode(text: &str) -> Result<Vec<u8>, CorruptInput> {
    let input = text.as_bytes();
    let mut decoded = Vec::with_capacity(input.len() / 4 * 3);
    let mut at = 0;
    loop {
        // One group of four characters, line breaks not counted.
        let mut sextets = [0u8; 4];
        let mut count = 0;
        while count < 4 {
            let Some(&byte) = input.get(at) else {
                // The input ends: between groups it is complete; inside one, padding is missing.
                return if count == 0 {
                    Ok(decoded)
                } else {
                    Err(CorruptInput(at - count))
                };
            };
            at += 1;
            if let Some(value) = sextet(byte) {
                sextets[count] = value;
                count += 1;
                continue;
            }
            if is_line_break(byte) {
                continue;
            }
            // Padding may only follow two or three characters of a group.
            if byte != b'=' || count < 2 {
                return Err(CorruptInput(at - 1));
            }
            if count == 2 {
                // A second `=` must follow, line breaks aside.
                at = skip_line_breaks(input, at);
                match input.get(at) {
                    None => return Err(CorruptInput(input.len())),
                    Some(b'=') => at += 1,
                    Some(_) => return Err(CorruptInput(at - 1)),
                }
            }
            // Only line breaks may follow the padding.
            at = skip_line_breaks(input, at);
            if at < input.len() {
                return Err(CorruptInput(at));
            }
            push_group(&mut decoded, sextets, count);
            return Ok(decoded);
        }
        push_group(&mut decoded, sextets, 4);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(text: &str) -> Result<String, String> {
        decode(text)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .map_err(|error| error.to_string())
    }

    #[test]
    fn line_breaks_are_skipped_anywhere() {
        assert_eq!(decoded("aGVsbG8=").as_deref(), Ok("hello"));
        assert_eq!(decoded("aGVs\nbG8=\n").as_deref(), Ok("hello"));
        assert_eq!(decoded("\r\naG\r\nVsbG8\n=\n").as_deref(), Ok("hello"));
        assert_eq!(decoded("aGk\n=").as_deref(), Ok("hi"));
        assert_eq!(decoded("YQ=\n=\n").as_deref(), Ok("a"));
        assert_eq!(decoded("").as_deref(), Ok(""));
        assert_eq!(decoded("\n\n").as_deref(), Ok(""));
    }

    #[test]
    fn unused_bits_need_not_be_zero() {
        // `YR==` leaves bits set that `YQ==` does not: Go's StdEncoding is not strict.
        assert_eq!(decoded("YR==").as_deref(), Ok("a"));
    }

    #[test]
    fn failures_name_the_byte_go_names() {
        for (text, offset) in [
            ("!!", 0),
            ("aGVsbG8", 4),
            ("YQ", 0),
            ("Y", 0),
            ("aGVs bG8=", 4),
            ("YQ==YQ==", 4),
            ("YQ=", 3),
            ("YQ=x", 2),
            ("=", 0),
            ("Y===", 1),
            ("aGk=\n x", 5),
        ] {
            assert_eq!(
                decoded(text),
                Err(format!("illegal base64 data at input byte {offset}")),
                "{text:?}"
            );
        }
    }
}
