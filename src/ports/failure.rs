//! How a port tells its caller that a call failed: one classification for every port. The adapter
//! that made the call decides the class (it knows the service's error codes); the caller acts on
//! the class alone (ask again, narrow the request, or give the records back with the reason).

/// A failure's cause, kept as the error it was (for the log line), whatever service raised it.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What asking again can do about a failed call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// Throttling, a 5xx, a time-out or the network (after the SDK's own retries): asking again
    /// later may succeed.
    Transient,
    /// The service refused the request as it is (a ValidationException: a key that does not fit
    /// the table's schema, a key asked twice): the same request fails again, a changed one may not.
    Invalid,
    /// Anything else (no such table, access denied): asking again will not help.
    Permanent,
}

impl FailureKind {
    pub fn is_transient(self) -> bool {
        self == FailureKind::Transient
    }
}
