//! The source table's time to live: the [`TimeToLive`] port (DescribeTimeToLive), and
//! [`resolve`], which names the attribute the engine judges expiry by (`Config::ttl_attribute`).
//! Adapter: `aws::ttl::DynamoDbTimeToLive`. Called once per process, by the wiring in `aws`.

use std::future::Future;

use thiserror::Error;

use crate::report::error_chain;

#[derive(Debug, Error)]
pub enum TtlError {
    #[error("DescribeTimeToLive on table {table} failed")]
    Service {
        table: String,
        #[source]
        source: Box<aws_sdk_dynamodb::Error>,
    },
}

/// Reads a table's TTL setting.
pub trait TimeToLive: Send + Sync {
    /// The table's TTL attribute while DynamoDB may delete by it (enabled, or being enabled or
    /// disabled); `None` when TTL is disabled.
    fn ttl_attribute(
        &self,
        table: &str,
    ) -> impl Future<Output = Result<Option<String>, TtlError>> + Send;
}

/// The TTL attribute an item's expiry is judged by: `configured` (`TTL_ATTRIBUTE`) when set, else
/// the source table's, read with DescribeTimeToLive. When that read fails (say, no permission),
/// one WARN and `None`: items are compared as usual and none is EXPIRED (the strict side).
pub async fn resolve<T: TimeToLive>(
    configured: Option<&str>,
    port: &T,
    source_table: &str,
) -> Option<String> {
    if let Some(name) = configured {
        return Some(name.to_string());
    }
    match port.ttl_attribute(source_table).await {
        Ok(Some(name)) => {
            tracing::info!(table = source_table, ttl_attribute = %name, "TTL is enabled on the source table: items past it are EXPIRED where the tables differ");
            Some(name)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(table = source_table, error = %error_chain(&e), "the source table's TTL setting could not be read: items are compared as usual, none is EXPIRED (set TTL_ATTRIBUTE, or allow dynamodb:DescribeTimeToLive)");
            None
        }
    }
}
