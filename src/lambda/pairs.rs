//! One stream verifier function for many table pairs (`TABLE_PAIRS`): a verifier per pair, and
//! each event handed to the pair of the table its records came from (their `eventSourceARN`).
//!
//! An event mapping attaches one stream, so one event holds one table's records. An event whose
//! table no pair lists, or whose records name two tables, is handed back whole (every record a
//! batch item failure) with an ERROR that names the table: the event source mapping retries it
//! up to its `MaximumRetryAttempts`, then sends it to the failure queue, where readiness sees it.
//! Nothing is verified against the wrong table.

use std::collections::{BTreeSet, HashMap};

use aws_lambda_events::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use tokio::time::Instant;

use crate::lambda::event::StreamEvent;
use crate::lambda::handler::StreamVerifier;
use crate::ports::findings::FindingsStore;
use crate::ports::table::TableReader;

/// The verifiers of a function: by source table name, or one for whatever table it is attached
/// to (without `TABLE_PAIRS`, as before).
pub enum Verifiers<R, F> {
    One(Box<StreamVerifier<R, F>>),
    ByTable(HashMap<String, StreamVerifier<R, F>>),
}

/// Which verifier an event goes to.
#[derive(Debug, PartialEq, Eq)]
pub enum Route<'a> {
    Table(&'a str),
    /// No record names its table (an empty event, or records without `eventSourceARN`).
    Unknown,
    /// Records of more than one table.
    Mixed(Vec<&'a str>),
}

/// The table an event's records came from.
pub fn route(event: &StreamEvent) -> Route<'_> {
    let tables: BTreeSet<&str> = event
        .records
        .iter()
        .filter_map(|r| r.source_table.as_deref())
        .chain(
            event
                .malformed
                .iter()
                .filter_map(|m| m.source_table.as_deref()),
        )
        .collect();
    match tables.len() {
        0 => Route::Unknown,
        1 => Route::Table(tables.into_iter().next().unwrap_or_default()),
        _ => Route::Mixed(tables.into_iter().collect()),
    }
}

impl<R: TableReader, F: FindingsStore> Verifiers<R, F> {
    /// Verifies the event with its pair's verifier and emits its metrics; an event no pair takes
    /// is handed back whole (module documentation).
    pub async fn handle_and_emit(
        &self,
        event: &StreamEvent,
        deadline: Option<Instant>,
    ) -> DynamoDbEventResponse {
        let by_table = match self {
            Verifiers::One(verifier) => return verifier.handle_and_emit(event, deadline).await,
            Verifiers::ByTable(by_table) => by_table,
        };
        let why = match route(event) {
            Route::Table(table) => match by_table.get(table) {
                Some(verifier) => return verifier.handle_and_emit(event, deadline).await,
                None => {
                    let listed: Vec<&str> = by_table.keys().map(String::as_str).collect();
                    format!(
                        "the event's records come from table {table}, which TABLE_PAIRS does not list ({}): add its pair, or remove this event source mapping",
                        listed.join(", ")
                    )
                }
            },
            Route::Unknown if event.is_empty() => return DynamoDbEventResponse::default(),
            Route::Unknown => "no record of the event names its table (eventSourceARN): it cannot be matched to a pair of TABLE_PAIRS".to_string(),
            Route::Mixed(tables) => format!(
                "the event holds records of tables {}: one event source mapping reads one stream, so this event is not one Lambda delivered",
                tables.join(", ")
            ),
        };
        tracing::error!(records = event.len(), "{why}; every record is handed back");
        handed_back(event)
    }
}

/// Every record of the event as a batch item failure.
fn handed_back(event: &StreamEvent) -> DynamoDbEventResponse {
    let sequence_numbers = event
        .records
        .iter()
        .map(|r| r.sequence_number().map(str::to_string))
        .chain(event.malformed.iter().map(|m| m.sequence_number.clone()));
    let mut response = DynamoDbEventResponse::default();
    for sequence_number in sequence_numbers {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = sequence_number;
        response.batch_item_failures.push(failure);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `events/insert.json` with its records' stream ARNs replaced by those of `tables`, in turn.
    fn event_of(tables: &[&str]) -> StreamEvent {
        let text = include_str!("../../events/insert.json");
        let mut json: serde_json::Value = serde_json::from_str(text).unwrap();
        let record = json["Records"][0].clone();
        json["Records"] = tables
            .iter()
            .map(|t| {
                let mut r = record.clone();
                r["eventSourceARN"] = format!(
                    "arn:aws:dynamodb:us-east-1:111111111111:table/{t}/stream/2026-01-01T00:00:00.000"
                )
                .into();
                r
            })
            .collect();
        StreamEvent::from_slice(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn an_event_goes_to_the_table_its_records_name_and_two_tables_are_refused() {
        assert_eq!(
            route(&event_of(&["Orders", "Orders"])),
            Route::Table("Orders")
        );
        assert_eq!(
            route(&event_of(&["Orders", "Catalog"])),
            Route::Mixed(vec!["Catalog", "Orders"])
        );
        assert_eq!(route(&StreamEvent::default()), Route::Unknown);
        let handed = handed_back(&event_of(&["Orders", "Catalog"]));
        assert_eq!(handed.batch_item_failures.len(), 2);
    }
}
