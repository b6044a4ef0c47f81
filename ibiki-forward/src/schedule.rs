//! When a failed forward is tried again.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The delays between a forward's attempts: after the first failed attempt
/// the first delay, after the second the second, and so on; once every
/// delay is spent, the forward is failed (and waits to be retried by hand).
///
/// Written as a comma-separated list of whole numbers with a unit (`ms`,
/// `s`, `m`, `h`, `d`): the default is [`DEFAULT`](Self::DEFAULT),
/// `5s,5m,30m,2h,5h,10h,10h`, eight attempts over about 28 hours. An empty
/// list is allowed and means no retry: one attempt only. Each delay is at
/// most [`MAX_DELAY`](Self::MAX_DELAY).
///
/// Each delay is jittered by up to ±10% when it is taken
/// ([`delay_after`](Self::delay_after)), so that the forwards of one outage
/// do not all come back at once.
///
/// ```
/// use std::time::Duration;
/// use ibiki_forward::RetrySchedule;
///
/// let schedule: RetrySchedule = "5s,5m".parse()?;
/// assert_eq!(schedule.delays(), [Duration::from_secs(5), Duration::from_secs(300)]);
/// assert_eq!(schedule.max_attempts(), 3);
/// let first = schedule.delay_after(1).expect("a retry");
/// assert!(first >= Duration::from_millis(4500) && first <= Duration::from_millis(5500));
/// assert_eq!(schedule.delay_after(3), None);
/// assert_eq!(schedule.to_string(), "5s,5m");
/// # Ok::<(), ibiki_forward::ScheduleError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule {
    delays: Vec<Duration>,
}

/// An entry of a retry schedule that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("retry schedule entry {entry:?} (number {position}): {reason}")]
pub struct ScheduleError {
    /// The entry, as written.
    pub entry: String,
    /// Its position in the list, from 1.
    pub position: usize,
    /// What is wrong with it.
    pub reason: ScheduleErrorReason,
}

/// What is wrong with an entry of a retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScheduleErrorReason {
    /// Not a whole number followed by a unit.
    #[error("expected a whole number and a unit (ms, s, m, h or d), like 5m")]
    Syntax,
    /// A unit other than `ms`, `s`, `m`, `h` and `d`.
    #[error("unknown unit: use ms, s, m, h or d")]
    Unit,
    /// Longer than [`RetrySchedule::MAX_DELAY`].
    #[error("longer than the longest delay allowed, 30d")]
    TooLong,
}

const UNITS: [(&str, u64); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl RetrySchedule {
    /// The default schedule's text.
    pub const DEFAULT: &'static str = "5s,5m,30m,2h,5h,10h,10h";

    /// The longest delay an entry may have: 30 days.
    pub const MAX_DELAY: Duration = Duration::from_secs(30 * 86_400);

    /// A schedule of these delays, each kept to the whole millisecond and
    /// at most [`MAX_DELAY`](Self::MAX_DELAY).
    pub fn new(delays: impl IntoIterator<Item = Duration>) -> Self {
        let delays = delays
            .into_iter()
            .map(|delay| {
                let millis = delay.min(Self::MAX_DELAY).as_millis();
                Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
            })
            .collect();
        Self { delays }
    }

    /// No retry: one attempt only.
    pub fn none() -> Self {
        Self { delays: Vec::new() }
    }

    /// The delays, before jitter.
    pub fn delays(&self) -> &[Duration] {
        &self.delays
    }

    /// How many attempts a forward gets: one more than the delays.
    pub fn max_attempts(&self) -> u32 {
        u32::try_from(self.delays.len())
            .unwrap_or(u32::MAX)
            .saturating_add(1)
    }

    /// How long to wait after `attempt` attempts failed (counting from 1:
    /// [`Lease::attempt`](ibiki_core::Lease::attempt)), jittered by up to
    /// ±10%; `None` once the schedule is spent. `0` is taken as `1`.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        let index = usize::try_from(attempt.max(1) - 1).ok()?;
        let base = *self.delays.get(index)?;
        // Without randomness (never on a supported system), no jitter.
        let random = getrandom::u64().unwrap_or(u64::MAX / 2);
        Some(jittered(base, random))
    }
}

/// `base` moved by up to ±10%, uniformly by `random`.
fn jittered(base: Duration, random: u64) -> Duration {
    let nanos = base.as_nanos();
    let spread = nanos / 10;
    // `nanos - spread ..= nanos + spread`; the modulo's bias is below
    // 0.003% for any delay up to MAX_DELAY.
    let offset = u128::from(random) % (2 * spread + 1);
    let jittered = nanos - spread + offset;
    Duration::new(
        u64::try_from(jittered / 1_000_000_000).unwrap_or(u64::MAX),
        // Below 10^9: fits.
        u32::try_from(jittered % 1_000_000_000).unwrap_or(0),
    )
}

impl Default for RetrySchedule {
    /// [`RetrySchedule::DEFAULT`].
    fn default() -> Self {
        Self::new(
            [5, 300, 1800, 7200, 18_000, 36_000, 36_000]
                .into_iter()
                .map(Duration::from_secs),
        )
    }
}

impl FromStr for RetrySchedule {
    type Err = ScheduleError;

    /// Reads `5s,5m,30m,2h`; spaces around entries are ignored, and an
    /// empty (or blank) text is the schedule without retries.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.trim().is_empty() {
            return Ok(Self::none());
        }
        let delays = text
            .split(',')
            .enumerate()
            .map(|(index, entry)| {
                parse_entry(entry.trim()).map_err(|reason| ScheduleError {
                    entry: entry.trim().to_owned(),
                    position: index + 1,
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { delays })
    }
}

fn parse_entry(entry: &str) -> Result<Duration, ScheduleErrorReason> {
    let split = entry
        .find(|c: char| !c.is_ascii_digit())
        .ok_or(ScheduleErrorReason::Syntax)?;
    let (number, unit) = entry.split_at(split);
    if number.is_empty() {
        return Err(ScheduleErrorReason::Syntax);
    }
    let (_, millis_per_unit) = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .ok_or(ScheduleErrorReason::Unit)?;
    let millis = number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(*millis_per_unit))
        .ok_or(ScheduleErrorReason::TooLong)?;
    let delay = Duration::from_millis(millis);
    if delay > RetrySchedule::MAX_DELAY {
        return Err(ScheduleErrorReason::TooLong);
    }
    Ok(delay)
}

impl fmt::Display for RetrySchedule {
    /// The schedule as [`FromStr`] reads it, each delay in its largest
    /// whole unit (`90s`, `2h`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, delay) in self.delays.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            // Whole milliseconds, at most MAX_DELAY: fits.
            let millis = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
            let (name, per) = UNITS
                .iter()
                .find(|(_, per)| millis % per == 0 && (millis > 0 || *per == 1_000))
                .unwrap_or(&("ms", 1));
            write!(f, "{}{name}", millis / per)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn the_default_is_the_documented_text() -> Result<(), ScheduleError> {
        assert_eq!(RetrySchedule::default(), RetrySchedule::DEFAULT.parse()?);
        assert_eq!(RetrySchedule::default().to_string(), RetrySchedule::DEFAULT);
        assert_eq!(RetrySchedule::default().max_attempts(), 8);
        Ok(())
    }

    #[test]
    fn units_and_spaces() -> Result<(), ScheduleError> {
        let schedule: RetrySchedule = " 250ms, 90s ,1m,1h,1d,0s".parse()?;
        assert_eq!(
            schedule.delays(),
            [
                Duration::from_millis(250),
                Duration::from_secs(90),
                Duration::from_secs(60),
                Duration::from_secs(3600),
                Duration::from_secs(86_400),
                Duration::ZERO,
            ]
        );
        assert_eq!(schedule.to_string(), "250ms,90s,1m,1h,1d,0s");
        Ok(())
    }

    #[test]
    fn an_empty_schedule_means_one_attempt() -> Result<(), ScheduleError> {
        for text in ["", "  "] {
            let schedule: RetrySchedule = text.parse()?;
            assert_eq!(schedule, RetrySchedule::none());
            assert_eq!(schedule.max_attempts(), 1);
            assert_eq!(schedule.delay_after(1), None);
            assert_eq!(schedule.to_string(), "");
        }
        Ok(())
    }

    #[test]
    fn errors_name_the_entry() {
        for (text, entry, position, reason) in [
            ("5s,5x", "5x", 2, ScheduleErrorReason::Unit),
            ("5s,,5m", "", 2, ScheduleErrorReason::Syntax),
            ("m", "m", 1, ScheduleErrorReason::Syntax),
            ("5", "5", 1, ScheduleErrorReason::Syntax),
            ("-5s", "-5s", 1, ScheduleErrorReason::Syntax),
            ("1.5h", "1.5h", 1, ScheduleErrorReason::Unit),
            ("31d", "31d", 1, ScheduleErrorReason::TooLong),
            (
                "99999999999999999999d",
                "99999999999999999999d",
                1,
                ScheduleErrorReason::TooLong,
            ),
        ] {
            let error = text.parse::<RetrySchedule>().expect_err(text);
            assert_eq!(
                error,
                ScheduleError {
                    entry: entry.to_owned(),
                    position,
                    reason
                },
                "{text}"
            );
            assert!(error.to_string().contains(&format!("{entry:?}")), "{error}");
        }
    }

    #[test]
    fn attempt_zero_is_taken_as_one() -> Result<(), ScheduleError> {
        let schedule: RetrySchedule = "10s".parse()?;
        assert!(schedule.delay_after(0).is_some());
        assert_eq!(schedule.delay_after(2), None);
        assert_eq!(schedule.delay_after(u32::MAX), None);
        Ok(())
    }

    #[test]
    fn jitter_reaches_both_ends() {
        let base = Duration::from_secs(100);
        assert_eq!(jittered(base, 0), Duration::from_secs(90));
        let top = 2 * (base.as_nanos() / 10);
        assert_eq!(
            jittered(base, u64::try_from(top).unwrap_or(0)),
            Duration::from_secs(110)
        );
        assert_eq!(jittered(Duration::ZERO, u64::MAX), Duration::ZERO);
    }

    fn delay() -> impl Strategy<Value = Duration> {
        (0..=RetrySchedule::MAX_DELAY.as_millis() as u64).prop_map(Duration::from_millis)
    }

    proptest! {
        #[test]
        fn jitter_stays_within_ten_percent(delays in prop::collection::vec(delay(), 1..10)) {
            let schedule = RetrySchedule::new(delays.clone());
            for (index, base) in delays.iter().enumerate() {
                let attempt = u32::try_from(index + 1).unwrap_or(u32::MAX);
                let got = schedule.delay_after(attempt);
                prop_assert!(got.is_some());
                let got = got.unwrap_or_default().as_nanos();
                let base = base.as_nanos();
                prop_assert!(got * 10 >= base * 9, "{got} < 90% of {base}");
                prop_assert!(got * 10 <= base * 11, "{got} > 110% of {base}");
            }
        }

        #[test]
        fn attempts_past_the_schedule_get_none(
            delays in prop::collection::vec(delay(), 0..10),
            past in 0u32..1000,
        ) {
            let schedule = RetrySchedule::new(delays.clone());
            let spent = u32::try_from(delays.len()).unwrap_or(u32::MAX) + 1 + past;
            prop_assert_eq!(schedule.delay_after(spent), None);
            prop_assert_eq!(schedule.max_attempts(), u32::try_from(delays.len()).unwrap_or(0) + 1);
        }

        #[test]
        fn display_parses_back(delays in prop::collection::vec(delay(), 0..10)) {
            let schedule = RetrySchedule::new(delays);
            let text = schedule.to_string();
            prop_assert_eq!(text.parse::<RetrySchedule>(), Ok(schedule));
        }

        #[test]
        fn any_text_parses_or_names_an_entry(text in "[0-9a-z, ]{0,30}") {
            match text.parse::<RetrySchedule>() {
                Ok(schedule) => prop_assert_eq!(schedule.to_string().parse::<RetrySchedule>(), Ok(schedule)),
                Err(error) => prop_assert!(text.split(',').any(|entry| entry.trim() == error.entry)),
            }
        }
    }
}
