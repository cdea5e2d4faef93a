//! [`DeliveryMetrics`] on CloudWatch: one GetMetricData call (paged) for a function's
//! `AWS/Lambda` `IteratorAge` (Maximum), `Errors` and `Throttles` (Sum), per minute; and the
//! function's timeout from Lambda (GetFunctionConfiguration; unread, `None`). A series CloudWatch
//! answers other than `Complete` is an error: missing datapoints would read as "none".

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, StatusCode};
use aws_smithy_types::error::display::DisplayErrorContext;

use crate::ports::delivery::{Delivery, DeliveryError, DeliveryMetrics};

/// Standard-resolution Lambda metrics: one datapoint a minute.
const PERIOD_S: i32 = 60;

#[derive(Debug, Clone)]
pub struct CloudWatchDelivery {
    client: aws_sdk_cloudwatch::Client,
    lambda: aws_sdk_lambda::Client,
}

impl CloudWatchDelivery {
    pub fn new(
        client: aws_sdk_cloudwatch::Client,
        lambda: aws_sdk_lambda::Client,
    ) -> CloudWatchDelivery {
        CloudWatchDelivery { client, lambda }
    }

    async fn timeout_s(&self, function: &str) -> Option<u32> {
        let out = self
            .lambda
            .get_function_configuration()
            .function_name(function)
            .send()
            .await
            .inspect_err(|e| {
                tracing::warn!(function, error = %DisplayErrorContext(e), "the function's timeout could not be read: Lambda's longest is assumed")
            })
            .ok()?;
        out.timeout.and_then(|s| u32::try_from(s).ok())
    }
}

fn query(id: &str, metric: &str, stat: &str, function: &str) -> MetricDataQuery {
    let metric = Metric::builder()
        .namespace("AWS/Lambda")
        .metric_name(metric)
        .dimensions(
            Dimension::builder()
                .name("FunctionName")
                .value(function)
                .build(),
        )
        .build();
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric)
                .period(PERIOD_S)
                .stat(stat)
                .build(),
        )
        .return_data(true)
        .build()
}

impl DeliveryMetrics for CloudWatchDelivery {
    async fn delivery(
        &self,
        function: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Delivery, DeliveryError> {
        let fail = |message: String| DeliveryError {
            function: function.to_string(),
            message,
        };
        let mut delivery = Delivery::default();
        let mut token = None;
        loop {
            let page = self
                .client
                .get_metric_data()
                .metric_data_queries(query("age", "IteratorAge", "Maximum", function))
                .metric_data_queries(query("errors", "Errors", "Sum", function))
                .metric_data_queries(query("throttles", "Throttles", "Sum", function))
                .start_time(DateTime::from_millis(from_ms as i64))
                .end_time(DateTime::from_millis(to_ms as i64))
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|e| fail(DisplayErrorContext(&e).to_string()))?;
            let last_page = page.next_token.as_deref().is_none_or(str::is_empty);
            for result in page.metric_data_results.unwrap_or_default() {
                // PartialData: the rest comes on the next page.
                match &result.status_code {
                    Some(StatusCode::Complete) => {}
                    Some(StatusCode::PartialData) if !last_page => {}
                    other => {
                        return Err(fail(format!(
                            "CloudWatch answered {:?} for {} with status {other:?} ({:?})",
                            result.id, function, result.messages
                        )))
                    }
                }
                let into = match result.id.as_deref() {
                    Some("age") => &mut delivery.iterator_age,
                    Some("errors") => &mut delivery.errors,
                    Some("throttles") => &mut delivery.throttles,
                    other => return Err(fail(format!("an answer for an unasked query {other:?}"))),
                };
                let times = result.timestamps.unwrap_or_default();
                let values = result.values.unwrap_or_default();
                for (at, value) in times.iter().zip(values) {
                    let at = u64::try_from(at.to_millis().map_err(|e| fail(e.to_string()))?)
                        .map_err(|_| fail(format!("a datapoint before 1970: {at}")))?;
                    into.push((at, value));
                }
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        delivery.function_timeout_s = self.timeout_s(function).await;
        // GetMetricData answers newest first by default; the port promises oldest first.
        for series in [
            &mut delivery.iterator_age,
            &mut delivery.errors,
            &mut delivery.throttles,
        ] {
            series.sort_by_key(|(at, _)| *at);
        }
        Ok(delivery)
    }
}
