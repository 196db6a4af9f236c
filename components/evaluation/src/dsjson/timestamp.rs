//! DSJSON's `Timestamp`: an RFC 3339 time in UTC, as the decision service
//! writes it (`2026-01-01T00:00:00.0000000Z`: seven fractional digits, the
//! 100 ns ticks of .NET). Written with seven digits; read with 0 to 9, a
//! `Z` and no other offset.

/// Nanoseconds per second.
const NS_PER_S: u64 = 1_000_000_000;
/// Seconds per day.
const S_PER_DAY: u64 = 86_400;

/// The RFC 3339 UTC form of `unix_ns`, with seven fractional digits.
pub fn format_timestamp(unix_ns: u64) -> String {
    let seconds = unix_ns / NS_PER_S;
    let ticks = (unix_ns % NS_PER_S) / 100;
    let days = seconds / S_PER_DAY;
    let in_day = seconds % S_PER_DAY;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ticks:07}Z",
        in_day / 3600,
        in_day % 3600 / 60,
        in_day % 60
    )
}

/// Unix nanoseconds of an RFC 3339 UTC time (`YYYY-MM-DDTHH:MM:SS[.f]Z`,
/// 1970 to 2554). The error says what is wrong.
pub fn parse_timestamp(text: &str) -> Result<u64, String> {
    let bad =
        || format!("`{text}` is not an RFC 3339 UTC time such as 2026-01-01T00:00:00.0000000Z");
    let bytes = text.as_bytes();
    if bytes.len() < 20 || !text.is_ascii() {
        return Err(bad());
    }
    let number = |range: std::ops::Range<usize>| -> Result<u64, String> {
        let part = &text[range];
        if part.bytes().all(|b| b.is_ascii_digit()) {
            part.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| bytes[i] != c) || !matches!(bytes[10], b'T' | b't') {
        return Err(bad());
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let rest = &text[19..];
    let (fraction, zone) = match rest.strip_prefix('.') {
        Some(after) => {
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 || digits > 9 {
                return Err(bad());
            }
            (&after[..digits], &after[digits..])
        }
        None => ("", rest),
    };
    if !matches!(zone, "Z" | "z") {
        return Err(format!("`{text}` is not in UTC (it must end in Z)"));
    }
    if !(1970..=2554).contains(&year)
        || !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    let days = days_from_civil(year as i64, month, day) as u64;
    let seconds = days * S_PER_DAY + hour * 3600 + minute * 60 + second;
    let nanos = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<u64>().map_err(|_| bad())? * 10u64.pow(9 - fraction.len() as u32)
    };
    seconds
        .checked_mul(NS_PER_S)
        .and_then(|ns| ns.checked_add(nanos))
        .ok_or_else(|| format!("`{text}` is after the last time unix nanoseconds hold"))
}

fn is_leap(year: u64) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u64, day: u64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month as i64 + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u64;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_times_format_and_parse() {
        let cases = [
            (0, "1970-01-01T00:00:00.0000000Z"),
            (1_767_225_600_000_000_000, "2026-01-01T00:00:00.0000000Z"),
            (1_612_456_289_246_000_000, "2021-02-04T16:31:29.2460000Z"),
            (951_782_400_000_000_100, "2000-02-29T00:00:00.0000001Z"),
        ];
        for (ns, text) in cases {
            assert_eq!(format_timestamp(ns), text);
            assert_eq!(parse_timestamp(text), Ok(ns), "{text}");
        }
        assert_eq!(
            parse_timestamp("2021-02-04T16:31:29Z"),
            Ok(1_612_456_289_000_000_000)
        );
        assert_eq!(
            parse_timestamp("2021-02-04T16:31:29.123456789Z"),
            Ok(1_612_456_289_123_456_789)
        );
    }

    #[test]
    fn every_day_of_four_centuries_round_trips() {
        for day in (0..146_097).step_by(3) {
            let ns = day * S_PER_DAY * NS_PER_S + 123_456_700;
            assert_eq!(parse_timestamp(&format_timestamp(ns)), Ok(ns));
        }
    }

    #[test]
    fn malformed_times_are_refused() {
        for text in [
            "",
            "2021-02-04",
            "2021-02-04T16:31:29",
            "2021-02-04T16:31:29+01:00",
            "2021-02-30T00:00:00Z",
            "2021-13-01T00:00:00Z",
            "2021-02-04T24:00:00Z",
            "1969-12-31T23:59:59Z",
            "2021-02-04T16:31:29.Z",
            "2021-02-04T16:31:29.1234567890Z",
            "2021-02-04 16:31:29Z",
            "+021-02-04T16:31:29Z",
        ] {
            assert!(parse_timestamp(text).is_err(), "{text}");
        }
        assert!(parse_timestamp("2021-02-04T16:31:29+01:00")
            .unwrap_err()
            .contains("UTC"));
    }
}
