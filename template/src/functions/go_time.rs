//! Go's reference-time layouts (`2006-01-02T15:04:05Z07:00`) for `Now`/`NowFmt`: the common
//! elements of Go's `time.Format`, applied to a UTC instant.

use time::OffsetDateTime;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Formats `instant` (taken in UTC) with the Go layout `layout`.
pub fn format(instant: OffsetDateTime, layout: &str) -> String {
    let instant = instant.to_offset(time::UtcOffset::UTC);
    let month = u8::from(instant.month()) as usize;
    let weekday = instant.weekday().number_days_from_monday() as usize;
    let hour12 = match instant.hour() % 12 {
        0 => 12,
        other => other,
    };
    // Longest elements first, so `2006` wins over `2` and `January` over `Jan`.
    let elements: [(&str, String); 27] = [
        ("January", MONTHS[month - 1].to_string()),
        ("Monday", DAYS[weekday].to_string()),
        ("Z07:00", "Z".to_string()),
        ("-07:00", "+00:00".to_string()),
        ("-0700", "+0000".to_string()),
        ("Z0700", "Z".to_string()),
        (".000000000", format!(".{:09}", instant.nanosecond())),
        (".000000", format!(".{:06}", instant.nanosecond() / 1_000)),
        (".000", format!(".{:03}", instant.nanosecond() / 1_000_000)),
        ("2006", format!("{:04}", instant.year())),
        ("Jan", MONTHS[month - 1][..3].to_string()),
        ("Mon", DAYS[weekday][..3].to_string()),
        ("MST", "UTC".to_string()),
        ("-07", "+00".to_string()),
        ("01", format!("{month:02}")),
        ("02", format!("{:02}", instant.day())),
        ("_2", format!("{:>2}", instant.day())),
        ("15", format!("{:02}", instant.hour())),
        ("03", format!("{hour12:02}")),
        ("04", format!("{:02}", instant.minute())),
        ("05", format!("{:02}", instant.second())),
        ("06", format!("{:02}", instant.year() % 100)),
        (
            "PM",
            if instant.hour() >= 12 { "PM" } else { "AM" }.to_string(),
        ),
        (
            "pm",
            if instant.hour() >= 12 { "pm" } else { "am" }.to_string(),
        ),
        ("1", month.to_string()),
        ("2", instant.day().to_string()),
        ("3", hour12.to_string()),
    ];
    let mut formatted = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (element, value) in &elements {
            if let Some(after) = rest.strip_prefix(element) {
                formatted.push_str(value);
                rest = after;
                continue 'outer;
            }
        }
        let mut characters = rest.chars();
        if let Some(character) = characters.next() {
            formatted.push(character);
        }
        rest = characters.as_str();
    }
    formatted
}
