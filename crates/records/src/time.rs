//! Timestamps in records: RFC 3339 in UTC with nanoseconds, computed here because
//! the records crate has no date library and needs only this one format.

/// `2026-12-02T13:40:01.123456789Z` for `ns` nanoseconds since the Unix epoch.
pub fn rfc3339(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Year, month, day of the day `days` after 1970-01-01 (proleptic Gregorian):
/// counted in 400-year eras that start on March 1st, so leap days fall last.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29 12:34:56.5 (a leap day in a year divisible by 400)
        assert_eq!(
            super::rfc3339(951_827_696_500_000_000),
            "2000-02-29T12:34:56.500000000Z"
        );
        assert_eq!(
            super::rfc3339(1_764_682_801_000_000_001),
            "2025-12-02T13:40:01.000000001Z"
        );
    }
}
