//! Time as supakeys reads and writes it: the clock of this run, the range of times it
//! accepts anywhere (1970 to the end of year 9999), dates for messages, and a clock that is
//! obviously wrong.

/// Every time supakeys reads or writes lies between 1970 and the end of year 9999.
pub const MAX_TIME: i64 = 253_402_300_799;

/// The day this version of supakeys was released (00:00 UTC; `.ci/release-check` holds it to
/// the date of the version in CHANGELOG.md). A clock that reads earlier is wrong.
pub const RELEASED: i64 = 1_796_169_600;

/// Says so when `now` is obviously wrong: earlier than the release of this supakeys (a board
/// without a real-time clock boots in 1970). Tokens minted then expire early, and the times
/// written into `state.json` are wrong.
pub fn before_release(now: i64) -> Option<String> {
    (now < RELEASED).then(|| {
        format!(
            "the clock reads {}, before this supakeys was released ({}): it is wrong. Tokens minted now expire too early and state.json records wrong times; set the clock (NTP) and run again",
            date(now),
            date(RELEASED)
        )
    })
}

/// The time of this run, in unix seconds (0 if the clock is before 1970).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A unix time as an RFC 3339 UTC timestamp (civil-from-days, no time zone database).
pub fn date(secs: i64) -> String {
    // Years 1 to 9999: nothing supakeys shows lies outside, and the arithmetic stays small.
    let secs = secs.clamp(-62_135_596_800, 253_402_300_799);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_before_the_release_is_wrong() {
        assert!(before_release(0).unwrap().contains("1970-01-01T00:00:00Z"));
        assert!(before_release(RELEASED - 1).is_some());
        assert_eq!(before_release(RELEASED), None);
    }

    #[test]
    fn dates() {
        assert_eq!(date(0), "1970-01-01T00:00:00Z");
        assert_eq!(date(1_800_000_000), "2027-01-15T08:00:00Z");
        assert_eq!(date(951_782_400), "2000-02-29T00:00:00Z");
    }
}
