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

/// A call that failed, as every port reports it: the operation, what it was called on, its class
/// and its cause (`UpdateItem on checkpoint table Checkpoints failed: …`).
#[derive(Debug, thiserror::Error)]
#[error("{operation} on {on} failed")]
pub struct CallFailure {
    pub operation: &'static str,
    /// What it was called on, as a log line names it: `table Orders`, `findings table Findings`.
    pub on: String,
    pub kind: FailureKind,
    #[source]
    pub source: BoxError,
}

impl CallFailure {
    pub fn new(
        operation: &'static str,
        on: impl Into<String>,
        kind: FailureKind,
        source: impl Into<BoxError>,
    ) -> CallFailure {
        CallFailure {
            operation,
            on: on.into(),
            kind,
            source: source.into(),
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind.is_transient()
    }
}
