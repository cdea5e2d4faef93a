//! The stream verifier's event source mappings, behind the [`MappingSource`] port: when a mapping
//! was created, enabled, disabled or updated, the function may have skipped records (a mapping
//! attached again at `LATEST` starts after whatever came in between), which its own coverage
//! cannot show. Adapter: `aws::mappings::LambdaMappings`.

use std::future::Future;

use thiserror::Error;

/// One event source mapping on a stream, as Lambda reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub uuid: String,
    /// The function's name (its ARN's name part, without a version or alias).
    pub function: String,
    pub state: String,
    /// When it was last created, updated or changed state (epoch ms).
    pub last_modified_ms: Option<u64>,
    /// How long it gathers records before a batch (`MaximumBatchingWindowInSeconds`): a change
    /// may wait this long before the function is handed it.
    pub batching_window_s: Option<u32>,
    /// `LastProcessingResult`: `OK`, `No records processed`, or `PROBLEM: ...` (say, the mapping
    /// lost access to the stream, while its state stays `Enabled`).
    pub last_processing_result: Option<String>,
}

#[derive(Debug, Error)]
#[error("listing the event source mappings of {stream_arn} failed: {message}")]
pub struct MappingError {
    pub stream_arn: String,
    pub message: String,
}

/// Lists the mappings that read a stream.
pub trait MappingSource: Send + Sync {
    fn mappings(
        &self,
        stream_arn: &str,
    ) -> impl Future<Output = Result<Vec<Mapping>, MappingError>> + Send;
}

/// The function name of a Lambda function ARN (`arn:aws:lambda:<region>:<account>:function:<name>`,
/// with or without `:<version or alias>`), or the text itself when it is a plain name.
pub fn function_name(arn_or_name: &str) -> &str {
    match arn_or_name.split(':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "lambda", _, _, "function", name, ..] => name,
        _ => arn_or_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_functions_name_is_read_from_its_arn_with_or_without_a_qualifier() {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:verifier";
        assert_eq!(function_name(arn), "verifier");
        assert_eq!(function_name(&format!("{arn}:live")), "verifier");
        assert_eq!(function_name("verifier"), "verifier");
    }
}
