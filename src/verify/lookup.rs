//! Key lookups, for the engine and whatever else compares tables: each distinct key asked once,
//! grouped by key schema, 100 keys a BatchGetItem call, all calls under the verifier's shared
//! permits (`MAX_CONCURRENCY`), unprocessed keys asked again with jittered backoff, and a request
//! the service rejects as invalid narrowed down to the key that made it so.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;

use aws_smithy_types::error::display::DisplayErrorContext;
use futures::stream::{FuturesUnordered, StreamExt};
use tokio::time::Instant;

use super::timing::UNPROCESSED;
use super::{BatchReport, Map, RetryReason, Verifier};
use crate::ports::table::{BatchGet, BatchGetOutput, LookupError, TableReader};
use crate::record::{Image, Item, ItemKey};

/// BatchGetItem's limit of keys per request.
pub const MAX_KEYS_PER_CALL: usize = 100;
pub(super) const UNPROCESSED_ATTEMPTS: u32 = 10;

/// Why a key's lookup gave no answer.
#[derive(Debug, Clone)]
pub(super) enum Failure {
    /// Read again later (`deadline`: cut by the deadline margin).
    Retry { reason: RetryReason, deadline: bool },
    /// The service rejects this key for this table: asking again will not help.
    InvalidKey(String),
}

/// Lookup results by record position.
pub(super) type Lookups<T> = Map<usize, Result<T, Failure>>;

/// One distinct key to look up: its canonical form, the key, and the records that want it.
type Wanted<'a> = (ItemKey, &'a Item, Vec<usize>);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Target,
    Source,
}

/// One lookup: which account, which table, until when.
#[derive(Clone, Copy)]
pub(super) struct Request<'a> {
    pub(super) side: Side,
    pub(super) table: &'a str,
    pub(super) stop_at: Option<Instant>,
}

impl<R: TableReader> Verifier<R> {
    /// Looks up `wanted` keys (record position, key) and hands each record's answer (the found
    /// item, or `None`) to `digest` as soon as its chunk arrives; or says why it could not be read.
    /// A key wanted by several records is asked once.
    pub(super) async fn lookup<T>(
        &self,
        request: Request<'_>,
        wanted: &[(usize, &Item)],
        report: &mut BatchReport,
        mut digest: impl FnMut(usize, Option<Image>) -> T,
    ) -> Lookups<T> {
        // All chunks are in flight at once (the semaphore bounds the calls); each is digested as it
        // completes, so only the chunks in flight hold items.
        let mut calls: FuturesUnordered<_> = chunks_of(wanted)
            .into_iter()
            .map(|(names, chunk)| {
                // Borrowed until sent: only the calls in flight hold copies of their keys.
                let keys = chunk
                    .iter()
                    .map(|(_, keys, _)| Cow::Borrowed(*keys))
                    .collect();
                let call = self.get_chunk(request, keys);
                async move { (names, chunk, call.await) }
            })
            .collect();
        let mut results: Lookups<T> =
            Map::with_capacity_and_hasher(wanted.len(), Default::default());
        let mut done = VecDeque::new();
        loop {
            poll_calls(&mut calls, &mut done).await;
            let (names, chunk, call) = match done.pop_front() {
                Some(call) => call,
                None => match calls.next().await {
                    Some(call) => call,
                    None => break,
                },
            };
            match request.side {
                Side::Target => report.lookup_calls += call.calls,
                Side::Source => report.source_calls += call.calls,
            }
            let answers = answers_of(request, &names, &chunk, call, report);
            for (n, ((_, _, mut indices), answer)) in chunk.into_iter().zip(answers).enumerate() {
                if n > 0 && n % POLL_EVERY == 0 {
                    poll_calls(&mut calls, &mut done).await;
                }
                match answer {
                    Ok(found) => {
                        // The same key for several records: each gets its copy, the last the item.
                        let last = indices.pop().unwrap_or_default();
                        for index in indices {
                            results.insert(index, Ok(digest(index, found.clone())));
                        }
                        results.insert(last, Ok(digest(last, found)));
                    }
                    Err(failure) => {
                        for index in indices {
                            results.insert(index, Err(failure.clone()));
                        }
                    }
                }
            }
        }
        results
    }

    /// One chunk of at most 100 keys: unprocessed keys are asked again, and a request the service
    /// rejects as invalid is split until the key that made it so is alone.
    async fn get_chunk<'k>(
        &self,
        request: Request<'_>,
        keys: Vec<Cow<'k, Item>>,
    ) -> ChunkResult<'k> {
        let table = request.table;
        let mut result = ChunkResult::default();
        // Key sets still to ask, with the unprocessed-keys attempts they have had.
        let mut work: Vec<(Vec<Cow<Item>>, u32)> = vec![(keys, 0)];
        while let Some((mut remaining, attempt)) = work.pop() {
            if request.stop_at.is_some_and(|s| Instant::now() >= s) {
                let error = LookupError::Deadline {
                    table: table.into(),
                };
                result.failed.push((remaining, error));
                continue;
            }
            result.calls += 1;
            let output = match self.batch_get(request, &remaining).await {
                Ok(output) => output,
                Err(error) if error.is_validation() && remaining.len() > 1 => {
                    let half = remaining.split_off(remaining.len() / 2);
                    work.push((half, attempt));
                    work.push((remaining, attempt));
                    continue;
                }
                Err(error) if error.is_validation() => {
                    let message = format!("{}", DisplayErrorContext(&error));
                    result
                        .invalid
                        .extend(remaining.into_iter().map(|k| (k, message.clone())));
                    continue;
                }
                Err(error) => {
                    result.failed.push((remaining, error));
                    continue;
                }
            };
            result.found.extend(output.items);
            if output.unprocessed.is_empty() {
                continue;
            }
            let unprocessed = output.unprocessed.into_iter().map(Cow::Owned).collect();
            let attempt = attempt + 1;
            match unprocessed_pause(attempt, request.stop_at) {
                Some(pause) => {
                    tokio::time::sleep(pause).await;
                    work.push((unprocessed, attempt));
                }
                None => {
                    let error = LookupError::Unprocessed {
                        table: table.to_string(),
                        attempts: attempt,
                    };
                    result.failed.push((unprocessed, error));
                }
            }
        }
        result
    }

    /// One BatchGetItem call for `keys` under a permit, cut at the request's `stop_at`.
    async fn batch_get(
        &self,
        request: Request<'_>,
        keys: &[Cow<'_, Item>],
    ) -> Result<BatchGetOutput, LookupError> {
        let (reader, consistent) = match request.side {
            Side::Target => (&self.target, self.config.consistent_read),
            // Always consistent: a stale source read could pass a real problem off as SUPERSEDED.
            Side::Source => (&self.source, true),
        };
        let table = request.table;
        let call = async {
            // The semaphore is never closed, so acquiring cannot fail.
            let _permit = self.permits.acquire().await.ok();
            let call = BatchGet {
                table,
                keys: keys.iter().map(|k| k.as_ref().clone()).collect(),
                consistent_read: consistent,
            };
            reader.batch_get(call).await
        };
        match request.stop_at {
            Some(stop) => tokio::time::timeout_at(stop, call)
                .await
                .unwrap_or_else(|_| {
                    Err(LookupError::Deadline {
                        table: table.into(),
                    })
                }),
            None => call.await,
        }
    }
}

/// The pause before asking again for keys left unprocessed on the `attempt`th try, or `None`
/// when they are given up: after `UNPROCESSED_ATTEMPTS`, or when the pause would pass `stop_at`.
fn unprocessed_pause(attempt: u32, stop_at: Option<Instant>) -> Option<Duration> {
    let pause = UNPROCESSED.pause(attempt);
    let given_up =
        attempt >= UNPROCESSED_ATTEMPTS || stop_at.is_some_and(|s| Instant::now() + pause >= s);
    (!given_up).then_some(pause)
}

/// `wanted` keys in chunks for BatchGetItem: one entry per distinct key (BatchGetItem rejects a
/// key asked twice), grouped by attribute names (sorted, each chunk's) so that results can be
/// matched to keys, at most 100 a chunk.
fn chunks_of<'a>(wanted: &[(usize, &'a Item)]) -> Vec<(Vec<&'a str>, Vec<Wanted<'a>>)> {
    let mut by_key: Map<ItemKey, (&Item, Vec<usize>)> = Map::default();
    for &(index, keys) in wanted {
        by_key
            .entry(ItemKey::of(keys))
            .or_insert_with(|| (keys, Vec::new()))
            .1
            .push(index);
    }
    let mut by_schema: Map<Vec<&str>, Vec<Wanted>> = Map::default();
    for (key, (keys, indices)) in by_key {
        let mut names: Vec<&str> = keys.keys().map(String::as_str).collect();
        names.sort_unstable();
        by_schema
            .entry(names)
            .or_default()
            .push((key, keys, indices));
    }
    let mut chunks = Vec::new();
    for (names, group) in by_schema {
        chunks.extend(per_call(group).map(|chunk| (names.clone(), chunk)));
    }
    chunks
}

/// A chunk's answers, by key in `chunk`: the item found, `None` (neither found nor failed:
/// absent), or why it could not be read. Failures are counted in `report`. Fail closed: an answer
/// that matches no key asked is never read as "absent"; the whole chunk is read again.
fn answers_of(
    request: Request<'_>,
    names: &[&str],
    chunk: &[Wanted],
    call: ChunkResult,
    report: &mut BatchReport,
) -> Vec<Result<Option<Image>, Failure>> {
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let position: Map<&ItemKey, usize> = chunk
        .iter()
        .enumerate()
        .map(|(i, (k, _, _))| (k, i))
        .collect();
    let mut answers: Vec<Result<Option<Image>, Failure>> =
        (0..chunk.len()).map(|_| Ok(None)).collect();
    let mut unmatched = None;
    for item in call.found {
        match position.get(&item.project(&names)) {
            Some(&i) => answers[i] = Ok(Some(item)),
            None => unmatched = Some("an item"),
        }
    }
    let mut answer = |key: &Item, failure: Failure| match position.get(&ItemKey::of(key)) {
        Some(&i) => answers[i] = Err(failure),
        None => unmatched = Some("a key"),
    };
    for (keys, error) in call.failed {
        let failure = lookup_failed(request.table, keys.len(), &error, report);
        for key in keys {
            answer(&key, failure.clone());
        }
    }
    for (key, message) in call.invalid {
        answer(&key, Failure::InvalidKey(message));
    }
    if let Some(what) = unmatched {
        report.lookup_errors += 1;
        let error = LookupError::Unmatched {
            table: request.table.to_string(),
            what: what.to_string(),
        };
        tracing::warn!(table = request.table, error = %error, "lookup answer does not match the request; records go back for retry");
        let failure = Failure::Retry {
            reason: RetryReason::LookupFailed {
                message: error.to_string(),
                transient: true,
            },
            deadline: false,
        };
        answers.iter_mut().for_each(|a| *a = Err(failure.clone()));
    }
    answers
}

/// A failed read of `keys` keys: counted and logged, and a retry. A read cut by the deadline margin
/// is counted too (the service was slower than the time left), but a record read before goes
/// back as it stood.
fn lookup_failed(
    table: &str,
    keys: usize,
    error: &LookupError,
    report: &mut BatchReport,
) -> Failure {
    report.lookup_errors += 1;
    tracing::warn!(table, keys, error = %DisplayErrorContext(error), "lookup failed; records go back for retry");
    Failure::Retry {
        reason: RetryReason::LookupFailed {
            message: format!("{}", DisplayErrorContext(error)),
            transient: error.is_transient(),
        },
        deadline: matches!(error, LookupError::Deadline { .. }),
    }
}

/// `keys` in chunks of at most 100, each its own allocation: a chunk split off the front of a
/// longer vector would keep that vector's whole capacity (memory quadratic in the batch's keys).
fn per_call<T>(keys: Vec<T>) -> impl Iterator<Item = Vec<T>> {
    let mut keys = keys.into_iter().peekable();
    std::iter::from_fn(move || {
        keys.peek()?;
        Some(keys.by_ref().take(MAX_KEYS_PER_CALL).collect())
    })
}

/// Records digested between two polls of the calls.
const POLL_EVERY: usize = 16;

/// Polls the calls, queueing those that finished. A finished call frees its permit, but the call
/// waiting for it starts only when polled: so the calls are polled before an answer is digested,
/// and every few records while it is.
async fn poll_calls<F: Future>(calls: &mut FuturesUnordered<F>, done: &mut VecDeque<F::Output>) {
    while let Poll::Ready(Some(call)) = futures::poll!(calls.next()) {
        done.push_back(call);
    }
}

#[derive(Default)]
struct ChunkResult<'k> {
    found: Vec<Image>,
    failed: Vec<(Vec<Cow<'k, Item>>, LookupError)>,
    /// Keys the service rejects for this table, with its message.
    invalid: Vec<(Cow<'k, Item>, String)>,
    calls: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_call_holds_only_its_own_keys() {
        let chunks: Vec<Vec<usize>> = per_call((0..10_050).collect()).collect();
        assert_eq!(chunks.len(), 101);
        assert!(chunks.iter().all(|c| c.capacity() <= MAX_KEYS_PER_CALL));
        assert_eq!(chunks[100], (10_000..10_050).collect::<Vec<_>>());
        assert_eq!(chunks.concat(), (0..10_050).collect::<Vec<_>>());
        assert_eq!(per_call(Vec::<usize>::new()).count(), 0);
    }

    use aws_sdk_dynamodb::types::AttributeValue as V;

    fn key(pairs: &[(&str, &str)]) -> Item {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), V::S(v.to_string())))
            .collect()
    }

    #[test]
    fn each_distinct_key_is_asked_once_in_chunks_of_one_schema() {
        let (a, b, c) = (
            key(&[("pk", "a")]),
            key(&[("pk", "b")]),
            key(&[("id", "c")]),
        );
        let wanted = [(0, &a), (1, &b), (2, &a), (3, &c)];
        let mut chunks = chunks_of(&wanted);
        chunks.sort_by(|x, y| x.0.cmp(&y.0));
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].0, vec!["id"]);
        assert_eq!(chunks[1].0, vec!["pk"]);
        let mut pk: Vec<Vec<usize>> = chunks[1].1.iter().map(|(_, _, i)| i.clone()).collect();
        pk.sort();
        assert_eq!(pk, vec![vec![0, 2], vec![1]]);
        let many: Vec<Item> = (0..250).map(|i| key(&[("pk", &i.to_string())])).collect();
        let wanted: Vec<(usize, &Item)> = many.iter().enumerate().collect();
        let sizes: Vec<usize> = chunks_of(&wanted).iter().map(|(_, c)| c.len()).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
    }

    #[test]
    fn answers_match_their_keys_and_an_unmatched_one_fails_the_chunk() {
        let (a, b) = (key(&[("pk", "a")]), key(&[("pk", "b")]));
        let wanted = [(0, &a), (1, &b)];
        let (names, chunk) = chunks_of(&wanted).pop().expect("one chunk");
        let request = Request {
            side: Side::Target,
            table: "T",
            stop_at: None,
        };
        let mut report = BatchReport::default();
        let found = |item: &Item| ChunkResult {
            found: vec![item.clone().into()],
            ..ChunkResult::default()
        };
        let answers = answers_of(request, &names, &chunk, found(&a), &mut report);
        for ((k, _, _), answer) in chunk.iter().zip(&answers) {
            let found = answer.as_ref().ok().and_then(|f| f.as_ref()).is_some();
            assert_eq!(found, *k == ItemKey::of(&a));
        }
        assert_eq!(report.lookup_errors, 0);
        // An item under a key nobody asked: no key of the chunk is taken as absent.
        let stray = key(&[("pk", "z")]);
        let answers = answers_of(request, &names, &chunk, found(&stray), &mut report);
        assert!(answers.iter().all(|a| matches!(
            a,
            Err(Failure::Retry {
                deadline: false,
                ..
            })
        )));
        assert_eq!(report.lookup_errors, 1);
    }

    #[test]
    fn unprocessed_keys_are_given_up_after_their_attempts_or_their_time() {
        let far = Some(Instant::now() + std::time::Duration::from_secs(3600));
        for attempt in 1..UNPROCESSED_ATTEMPTS {
            assert!(
                unprocessed_pause(attempt, far).is_some(),
                "attempt {attempt}"
            );
            assert!(unprocessed_pause(attempt, None).is_some());
        }
        assert_eq!(unprocessed_pause(UNPROCESSED_ATTEMPTS, None), None);
        assert_eq!(unprocessed_pause(1, Some(Instant::now())), None);
    }
}
