//! Small tools every layer may use and that use nothing of the crate: the clock and errors as
//! text. (The read-rate limit, which wraps the ports, lives with them: `ports::rate`.)

pub mod clock;
pub mod errors;

pub use clock::{epoch_ms, rfc3339};
pub use errors::error_chain;
