//! Errors as one line of text: an error with its causes, for a log field, a reason or a message.

/// An error with its sources, for one log field or message.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        out.push_str(": ");
        out.push_str(&e.to_string());
        source = e.source();
    }
    out
}
