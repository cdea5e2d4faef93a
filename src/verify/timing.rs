//! Time: the lag window's clock, the one backoff with jitter, and deadlines as Lambda sends them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::config::LagWindowFrom;
use crate::record::Expectation;
use crate::shared::epoch_ms;

/// A creation time further ahead of this function's clock than this is not a creation time (a
/// value in ms or µs read as seconds): the record's window starts at its arrival instead.
const CREATION_CLOCK_SKEW: Duration = Duration::from_secs(5);

/// Maps tokio's (pausable) clock to wall-clock time, so record ages follow `tokio::time::pause()`.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    pub(crate) wall: SystemTime,
    pub(crate) instant: Instant,
    pub(crate) from: LagWindowFrom,
}

impl Clock {
    pub(crate) fn start(from: LagWindowFrom) -> Clock {
        Clock {
            wall: SystemTime::now(),
            instant: Instant::now(),
            from,
        }
    }

    pub(crate) fn wall_at(&self, at: Instant) -> SystemTime {
        self.wall + (at - self.instant)
    }

    /// The record's creation time when the window is measured from it and it is believable.
    pub(crate) fn creation(&self, record: &Expectation) -> Option<SystemTime> {
        match (self.from, record.since) {
            (LagWindowFrom::Creation, Some(created))
                if created <= self.wall + CREATION_CLOCK_SKEW =>
            {
                Some(created)
            }
            _ => None,
        }
    }

    /// Where the record's replication window starts. DynamoDB rounds creation times down to the
    /// second, so a whole second counts as its end: the change may have been made up to 1 s later.
    pub(crate) fn window_start(&self, record: &Expectation) -> SystemTime {
        match self.creation(record) {
            Some(created) => {
                let whole = created
                    .duration_since(UNIX_EPOCH)
                    .is_ok_and(|d| d.subsec_nanos() == 0);
                if whole {
                    created + Duration::from_secs(1)
                } else {
                    created
                }
            }
            // Without a creation time, the record gets a full window from its arrival.
            None => self.wall,
        }
    }

    /// The replication lag bound of a record seen matching at `at`: from the rounded-down
    /// creation time, so it stays an upper bound.
    pub(crate) fn lag_at(&self, record: &Expectation, at: Instant) -> Duration {
        let from = self.creation(record).unwrap_or(self.wall);
        self.wall_at(at).duration_since(from).unwrap_or_default()
    }

    pub(crate) fn window_passed(&self, record: &Expectation, lag: Duration, at: Instant) -> bool {
        self.wall_at(at)
            .duration_since(self.window_start(record))
            .is_ok_and(|age| age >= lag)
    }

    /// When the record's window closes.
    pub(crate) fn window_end(&self, record: &Expectation, lag: Duration) -> Instant {
        let due = self.window_start(record) + lag;
        match due.duration_since(self.wall) {
            Ok(ahead) => self.instant + ahead,
            Err(_) => self.instant,
        }
    }
}

/// Exponential backoff with "equal jitter": half fixed, half random, so retries spread without
/// collapsing to zero.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub first: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The pause before retry `n` (from 0): `first` doubled `n` times, at most `max`, jittered.
    pub fn pause(&self, n: u32) -> Duration {
        let d = self
            .first
            .saturating_mul(2u32.saturating_pow(n.min(16)))
            .min(self.max);
        d / 2 + d.mul_f64(fastrand::f64() / 2.0)
    }
}

/// Reading a record again while it waits for its window: 100 ms doubling to 2 s.
pub const REREAD: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(2),
};

/// Asking again for unprocessed keys: 50 ms doubling to 1.6 s.
pub const UNPROCESSED: Backoff = Backoff {
    first: Duration::from_millis(50),
    max: Duration::from_millis(1600),
};

/// The poller's GetRecords after throttling or an empty page: 200 ms doubling to 3.2 s.
pub const GET_RECORDS: Backoff = Backoff {
    first: Duration::from_millis(200),
    max: Duration::from_millis(3200),
};

/// An invocation's deadline as a tokio instant. Lambda sends it as epoch milliseconds;
/// `cargo lambda watch` sends the time remaining instead (600000): a value that cannot be a current
/// epoch time (before 2001) is read as that.
pub fn deadline_instant(deadline_ms: u64) -> Instant {
    const YEAR_2001_MS: u64 = 978_307_200_000;
    let remaining = if deadline_ms < YEAR_2001_MS {
        deadline_ms
    } else {
        deadline_ms.saturating_sub(epoch_ms())
    };
    Instant::now() + Duration::from_millis(remaining)
}
