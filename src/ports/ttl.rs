//! The source table's time to live: the [`TimeToLive`] port (DescribeTimeToLive), and
//! [`resolve`], which names the attribute the engine judges expiry by (`Config::ttl_attribute`).
//! Adapter: `aws::ttl::DynamoDbTimeToLive`. Called once per process, by the wiring in `aws`.

use std::future::Future;

use thiserror::Error;

use crate::ports::failure::{BoxError, FailureKind};
use crate::shared::error_chain;

#[derive(Debug, Error)]
pub enum TtlError {
    /// The call failed, classified by the adapter that made it.
    #[error("DescribeTimeToLive on table {table} failed")]
    Service {
        table: String,
        kind: FailureKind,
        #[source]
        source: BoxError,
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

#[cfg(test)]
mod tests {
    use super::*;

    /// DescribeTimeToLive's answer, counting the calls.
    struct Described {
        answer: fn() -> Result<Option<String>, TtlError>,
        calls: std::sync::atomic::AtomicUsize,
    }

    impl TimeToLive for Described {
        async fn ttl_attribute(&self, _table: &str) -> Result<Option<String>, TtlError> {
            self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            (self.answer)()
        }
    }

    fn described(answer: fn() -> Result<Option<String>, TtlError>) -> Described {
        Described {
            answer,
            calls: Default::default(),
        }
    }

    #[tokio::test]
    async fn ttl_attribute_wins_then_the_tables_setting_and_a_failed_read_means_no_expiry() {
        let enabled = described(|| Ok(Some("expiresAt".into())));
        let configured = resolve(Some("ttl"), &enabled, "Orders").await;
        assert_eq!(configured.as_deref(), Some("ttl"));
        assert_eq!(enabled.calls.into_inner(), 0, "TTL_ATTRIBUTE set: no call");

        let enabled = described(|| Ok(Some("expiresAt".into())));
        let read = resolve(None, &enabled, "Orders").await;
        assert_eq!(read.as_deref(), Some("expiresAt"));
        assert_eq!(resolve(None, &described(|| Ok(None)), "Orders").await, None);

        let denied = described(|| {
            Err(TtlError::Service {
                table: "Orders".into(),
                kind: FailureKind::Permanent,
                source: "AccessDeniedException".into(),
            })
        });
        assert_eq!(resolve(None, &denied, "Orders").await, None);
    }
}
