//! [`FailureQueue`] on SQS: GetQueueAttributes' approximate counts.

use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::ports::queue::{FailureQueue, QueueDepth, QueueError};

#[derive(Debug, Clone)]
pub struct SqsFailureQueue {
    client: aws_sdk_sqs::Client,
    url: String,
}

impl SqsFailureQueue {
    pub fn new(client: aws_sdk_sqs::Client, url: impl Into<String>) -> SqsFailureQueue {
        SqsFailureQueue {
            client,
            url: url.into(),
        }
    }
}

impl FailureQueue for SqsFailureQueue {
    fn url(&self) -> &str {
        &self.url
    }

    async fn depth(&self) -> Result<QueueDepth, QueueError> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .set_attribute_names(Some(names.to_vec()))
            .send()
            .await
            .map_err(|e| QueueError {
                url: self.url.clone(),
                message: DisplayErrorContext(&e).to_string(),
            })?;
        let attributes = out.attributes.unwrap_or_default();
        let count = |name: &QueueAttributeName| -> Result<u64, QueueError> {
            let text = attributes.get(name).ok_or_else(|| QueueError {
                url: self.url.clone(),
                message: format!("the answer has no {}", name.as_str()),
            })?;
            text.parse().map_err(|_| QueueError {
                url: self.url.clone(),
                message: format!("{} is not a count: {text:?}", name.as_str()),
            })
        };
        Ok(QueueDepth {
            visible: count(&names[0])?,
            in_flight: count(&names[1])?,
            delayed: count(&names[2])?,
        })
    }
}
