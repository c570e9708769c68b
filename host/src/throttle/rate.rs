//! Rate limits: a [`Rate`] parsed from text like `10/s`, and a [`Bucket`]
//! that paces events to it (GCRA, the token bucket kept as one instant).
//!
//! Pure: [`Bucket::take`] is given the time and says how long to wait.

use std::str::FromStr;
use std::time::{Duration, Instant};

/// At most `events` per `period`, evenly spaced, with up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// How many events per period (at least 1).
    pub events: u32,
    /// The period the events are counted over.
    pub period: Duration,
    /// How many events may go at once after a quiet spell (at least 1).
    pub burst: u32,
}

impl Rate {
    /// The spacing between events once the burst is used up.
    fn interval(&self) -> Duration {
        self.period / self.events.max(1)
    }
}

impl std::fmt::Display for Rate {
    /// As it is written in the configuration: `N/s burst M`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unit = match self.period.as_secs() {
            60 => "min",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit} burst {}", self.events, self.burst)
    }
}

/// A rate that is not `N/s`, `N/min` or `N/h`, optionally followed by
/// `burst M`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid rate {0:?}: expected N/s, N/min or N/h, optionally followed by \"burst M\"")]
pub struct ParseRateError(pub String);

impl FromStr for Rate {
    type Err = ParseRateError;

    /// `N/s`, `N/min` or `N/h` with N ≥ 1, then optionally `burst M`.
    /// Without it, `N/s` bursts to N (one second's worth) and `N/min` and
    /// `N/h` to 1: long-period limits are usually a receiver's quota, met by
    /// spacing events evenly.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ParseRateError(text.to_owned());
        let positive = |word: &str| word.parse().ok().filter(|&n: &u32| n > 0).ok_or_else(bad);
        let mut words = text.split_whitespace();
        let (count, unit) = words
            .next()
            .and_then(|w| w.split_once('/'))
            .ok_or_else(bad)?;
        let events = positive(count)?;
        let (period, default_burst) = match unit {
            "s" => (Duration::from_secs(1), events),
            "min" => (Duration::from_secs(60), 1),
            "h" => (Duration::from_secs(3600), 1),
            _ => return Err(bad()),
        };
        let burst = match (words.next(), words.next(), words.next()) {
            (None, ..) => default_burst,
            (Some("burst"), Some(m), None) => positive(m)?,
            _ => return Err(bad()),
        };
        Ok(Self {
            events,
            period,
            burst,
        })
    }
}

/// The pacing state of one rate-limited key.
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    /// When the next event would be due if events were evenly spaced
    /// (GCRA's theoretical arrival time); `None` before the first.
    due: Option<Instant>,
}

impl Bucket {
    /// Takes one event's worth now, or says how long to wait before asking
    /// again (nothing is taken then).
    pub fn take(&mut self, rate: &Rate, now: Instant) -> Result<(), Duration> {
        let interval = rate.interval();
        let tolerance = interval * (rate.burst.max(1) - 1);
        let due = self.due.map_or(now, |due| due.max(now));
        let ahead = due - now;
        if ahead > tolerance {
            return Err(ahead - tolerance);
        }
        self.due = Some(due + interval);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(text: &str) -> Rate {
        text.parse().unwrap()
    }

    #[test]
    fn parses_units_and_bursts() {
        let secs = Duration::from_secs;
        assert_eq!(
            rate("100/s"),
            Rate {
                events: 100,
                period: secs(1),
                burst: 100
            }
        );
        assert_eq!(
            rate("10/min"),
            Rate {
                events: 10,
                period: secs(60),
                burst: 1
            }
        );
        assert_eq!(
            rate("4/h"),
            Rate {
                events: 4,
                period: secs(3600),
                burst: 1
            }
        );
        assert_eq!(
            rate(" 5/s  burst 20 "),
            Rate {
                events: 5,
                period: secs(1),
                burst: 20
            }
        );
    }

    #[test]
    fn a_rate_is_written_as_it_is_read() {
        for text in ["100/s", "10/min", "4/h", "5/s burst 20"] {
            let shown = rate(text).to_string();
            assert_eq!(rate(&shown), rate(text), "{text} shown as {shown}");
        }
        assert_eq!(rate("10/min").to_string(), "10/min burst 1");
    }

    #[test]
    fn rejects_bad_text_naming_it() {
        for bad in [
            "",
            "10",
            "10/day",
            "0/s",
            "-1/s",
            "x/s",
            "5/s burst",
            "5/s burst 0",
            "5/s 20",
        ] {
            let err = bad.parse::<Rate>().unwrap_err();
            assert_eq!(err, ParseRateError(bad.to_owned()));
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn paces_evenly_without_burst() {
        let (rate, t0) = (rate("2/min"), Instant::now());
        let mut bucket = Bucket::default();
        assert_eq!(bucket.take(&rate, t0), Ok(()));
        assert_eq!(bucket.take(&rate, t0), Err(Duration::from_secs(30)));
        assert_eq!(
            bucket.take(&rate, t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(20))
        );
        assert_eq!(bucket.take(&rate, t0 + Duration::from_secs(30)), Ok(()));
        assert_eq!(
            bucket.take(&rate, t0 + Duration::from_secs(30)),
            Err(Duration::from_secs(30))
        );
    }

    #[test]
    fn bursts_then_paces_and_refills_no_further_than_the_burst() {
        let (rate, t0) = (rate("10/s burst 3"), Instant::now());
        let ms = Duration::from_millis;
        let mut bucket = Bucket::default();
        for _ in 0..3 {
            assert_eq!(bucket.take(&rate, t0), Ok(()));
        }
        assert_eq!(bucket.take(&rate, t0), Err(ms(100)));
        assert_eq!(bucket.take(&rate, t0 + ms(100)), Ok(()));
        assert_eq!(bucket.take(&rate, t0 + ms(100)), Err(ms(100)));
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(&rate, later), Ok(()));
        }
        assert!(
            bucket.take(&rate, later).is_err(),
            "a long quiet spell refills only the burst"
        );
    }
}
