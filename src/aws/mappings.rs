//! [`MappingSource`] on Lambda: ListEventSourceMappings for a stream, paged to the end.

use crate::ports::mappings::{function_name, Mapping, MappingError, MappingSource};

#[derive(Debug, Clone)]
pub struct LambdaMappings {
    client: aws_sdk_lambda::Client,
}

impl LambdaMappings {
    pub fn new(client: aws_sdk_lambda::Client) -> LambdaMappings {
        LambdaMappings { client }
    }
}

impl MappingSource for LambdaMappings {
    async fn mappings(&self, stream_arn: &str) -> Result<Vec<Mapping>, MappingError> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let page = self
                .client
                .list_event_source_mappings()
                .event_source_arn(stream_arn)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| MappingError {
                    stream_arn: stream_arn.to_string(),
                    message: super::tables::call_error(&e),
                })?;
            for m in page.event_source_mappings.unwrap_or_default() {
                out.push(Mapping {
                    uuid: m.uuid.unwrap_or_default(),
                    function: function_name(m.function_arn.as_deref().unwrap_or_default())
                        .to_string(),
                    state: m.state.unwrap_or_default(),
                    last_modified_ms: m
                        .last_modified
                        .and_then(|t| u64::try_from(t.to_millis().ok()?).ok()),
                    batching_window_s: m
                        .maximum_batching_window_in_seconds
                        .and_then(|s| u32::try_from(s).ok()),
                    last_processing_result: m.last_processing_result,
                });
            }
            match page.next_marker.filter(|m| !m.is_empty()) {
                Some(next) => marker = Some(next),
                None => return Ok(out),
            }
        }
    }
}
