//! A fault-injecting HTTP proxy between the code under test and DynamoDB Local.
//!
//! It listens on 127.0.0.1:0 and forwards every request to DynamoDB Local, except that, for requests
//! matching a [`Rule`] (an `X-Amz-Target` operation, optionally a substring of the body), it injects
//! a fault at the rule's rate instead: an error answer with the body the real service sends (HTTP 400
//! ProvisionedThroughputExceededException, HTTP 400 ThrottlingException, HTTP 500
//! InternalServerError), a connection reset (the socket dropped with an RST, nothing answered and
//! nothing forwarded), or a delay before forwarding. Everything injected is counted, by operation
//! and kind, so tests can show that faults really happened.
//!
//! Which request gets a fault is drawn from a seeded RNG per rule, so a run is reproducible for the
//! same order of requests (concurrent requests may arrive in another order). The faults of a rule
//! cycle through its kinds, so every kind occurs as soon as a rule has injected as many faults as it
//! has kinds.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

pub const BATCH_GET_ITEM: &str = "DynamoDB_20120810.BatchGetItem";
pub const UPDATE_ITEM: &str = "DynamoDB_20120810.UpdateItem";
pub const GET_RECORDS: &str = "DynamoDBStreams_20120810.GetRecords";

/// What the proxy does instead of (or before) forwarding a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 400 `ProvisionedThroughputExceededException`.
    ProvisionedThroughputExceeded,
    /// HTTP 400 `ThrottlingException` (the coral availability error DynamoDB sends).
    Throttling,
    /// HTTP 500 `InternalServerError`.
    InternalServerError,
    /// HTTP 400 `ValidationException`: a request the service refuses as it is (never in the mix).
    Validation,
    /// The connection is dropped with an RST; the request is not forwarded.
    Reset,
    /// The request is forwarded after this long (a slow service).
    Delay(Duration),
    /// The request is forwarded and `from` is replaced by `to` in the answer: a service answer
    /// DynamoDB Local does not give (another table key, an attribute type this SDK does not know).
    Rewrite {
        from: &'static str,
        to: &'static str,
    },
}

/// A fault's kind, for counting (delays of any length are one kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    ProvisionedThroughputExceeded,
    Throttling,
    InternalServerError,
    Validation,
    Reset,
    Delay,
    Rewrite,
}

impl FaultKind {
    /// The kinds of the usual mix ([`mix`]); rewrites are asked for one by one.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::ProvisionedThroughputExceeded,
        FaultKind::Throttling,
        FaultKind::InternalServerError,
        FaultKind::Reset,
        FaultKind::Delay,
    ];

    /// Whether the request fails (a delay only slows it down; a rewrite answers).
    pub fn fails(self) -> bool {
        !matches!(self, FaultKind::Delay | FaultKind::Rewrite)
    }
}

impl Fault {
    pub fn kind(self) -> FaultKind {
        match self {
            Fault::ProvisionedThroughputExceeded => FaultKind::ProvisionedThroughputExceeded,
            Fault::Throttling => FaultKind::Throttling,
            Fault::InternalServerError => FaultKind::InternalServerError,
            Fault::Validation => FaultKind::Validation,
            Fault::Reset => FaultKind::Reset,
            Fault::Delay(_) => FaultKind::Delay,
            Fault::Rewrite { .. } => FaultKind::Rewrite,
        }
    }

    /// Status and body of an error answer, as DynamoDB sends them.
    fn error_answer(self) -> Option<(StatusCode, &'static str)> {
        Some(match self {
            Fault::ProvisionedThroughputExceeded => (
                StatusCode::BAD_REQUEST,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API."}"#,
            ),
            Fault::Throttling => (
                StatusCode::BAD_REQUEST,
                r#"{"__type":"com.amazon.coral.availability#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#,
            ),
            Fault::InternalServerError => (
                StatusCode::INTERNAL_SERVER_ERROR,
                r#"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#,
            ),
            Fault::Validation => (
                StatusCode::BAD_REQUEST,
                r#"{"__type":"com.amazon.coral.validate#ValidationException","message":"Item size has exceeded the maximum allowed size"}"#,
            ),
            Fault::Reset | Fault::Delay(_) | Fault::Rewrite { .. } => return None,
        })
    }
}

/// The four faults that fail a request and one short delay: the usual mix.
pub fn mix(delay: Duration) -> Vec<Fault> {
    vec![
        Fault::ProvisionedThroughputExceeded,
        Fault::Throttling,
        Fault::InternalServerError,
        Fault::Reset,
        Fault::Delay(delay),
    ]
}

/// Faults for the requests of one operation.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The `X-Amz-Target` header, e.g. [`BATCH_GET_ITEM`].
    pub operation: String,
    /// Only requests whose body contains this (e.g. a table name).
    pub body_contains: Option<String>,
    /// Fraction of matching requests that get a fault.
    pub rate: f64,
    /// Used in turn.
    pub faults: Vec<Fault>,
    /// At most this many faults, then the rule lets everything through.
    pub limit: Option<usize>,
}

impl Rule {
    pub fn new(operation: &str, rate: f64, faults: Vec<Fault>) -> Rule {
        assert!(!faults.is_empty() && (0.0..=1.0).contains(&rate));
        Rule {
            operation: operation.to_string(),
            body_contains: None,
            rate,
            faults,
            limit: None,
        }
    }

    pub fn times(mut self, limit: usize) -> Rule {
        self.limit = Some(limit);
        self
    }

    /// Every `operation` request whose body holds `text` answered with HTTP 500
    /// InternalServerError, and nothing else.
    pub fn server_error_when(operation: &str, text: &str) -> Rule {
        Rule::new(operation, 1.0, vec![Fault::InternalServerError]).when_body_contains(text)
    }

    pub fn when_body_contains(mut self, text: &str) -> Rule {
        self.body_contains = Some(text.to_string());
        self
    }

    fn matches(&self, operation: &str, body: &[u8]) -> bool {
        self.operation == operation
            && self.body_contains.as_deref().is_none_or(|text| {
                body.windows(text.len().max(1))
                    .any(|window| window == text.as_bytes())
            })
    }
}

struct ActiveRule {
    rule: Rule,
    rng: fastrand::Rng,
    injected: usize,
}

/// Faults injected so far, by operation and kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Injected(pub BTreeMap<(String, FaultKind), u64>);

impl Injected {
    pub fn get(&self, operation: &str, kind: FaultKind) -> u64 {
        self.0
            .get(&(operation.to_string(), kind))
            .copied()
            .unwrap_or(0)
    }

    /// Faults that failed requests of `operation` (errors and resets, not delays).
    pub fn failures(&self, operation: &str) -> u64 {
        self.0
            .iter()
            .filter(|((op, kind), _)| op == operation && kind.fails())
            .map(|(_, n)| n)
            .sum()
    }

    pub fn of_kind(&self, kind: FaultKind) -> u64 {
        self.0
            .iter()
            .filter(|((_, k), _)| *k == kind)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn on(&self, operation: &str) -> u64 {
        self.0
            .iter()
            .filter(|((op, _), _)| op == operation)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// What was injected since `earlier`.
    pub fn since(&self, earlier: &Injected) -> Injected {
        Injected(
            self.0
                .iter()
                .map(|(k, n)| (k.clone(), n - earlier.0.get(k).copied().unwrap_or(0)))
                .filter(|(_, n)| *n > 0)
                .collect(),
        )
    }
}

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let by_kind: Vec<String> = FaultKind::ALL
            .iter()
            .map(|k| format!("{k:?}={}", self.of_kind(*k)))
            .collect();
        write!(f, "{} faults ({})", self.total(), by_kind.join(", "))
    }
}

struct State {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    rules: Mutex<Vec<ActiveRule>>,
    seed: u64,
    injected: Mutex<Injected>,
    /// Requests received, by operation (faulted or not).
    seen: Mutex<BTreeMap<String, u64>>,
    /// Requests DynamoDB Local could not be asked (a broken proxy, not an injected fault).
    upstream_failures: AtomicU64,
}

/// A running proxy; it stops when dropped.
pub struct FaultProxy {
    endpoint: String,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

/// The service's error: hyper then closes the connection without answering.
#[derive(Debug)]
struct ResetConnection;

impl fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for ResetConnection {}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (DynamoDB Local's endpoint), forwarding everything
    /// until rules are set.
    pub async fn start(upstream: &str, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            rules: Mutex::new(Vec::new()),
            seed,
            injected: Mutex::new(Injected::default()),
            seen: Mutex::new(BTreeMap::new()),
            upstream_failures: AtomicU64::new(0),
        });
        let accept_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            // Owned here, so aborting the accept loop also ends every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of descriptors or the like: wait instead of spinning.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                // Any close by the proxy is then an RST, as a reset by a load balancer looks.
                let _ = stream.set_zero_linger();
                let state = Arc::clone(&accept_state);
                connections.spawn(async move {
                    let service = service_fn(move |req| handle(Arc::clone(&state), req));
                    // An error is an injected reset (or the client went away): the socket drops.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                while connections.try_join_next().is_some() {}
            }
        });
        FaultProxy {
            endpoint,
            state,
            task,
        }
    }

    /// The URL to give the SDK clients under test.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Replaces the rules (each starts a fresh RNG from the seed and its position).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        let active = rules
            .into_iter()
            .enumerate()
            .map(|(i, rule)| ActiveRule {
                rule,
                rng: fastrand::Rng::with_seed(
                    self.state
                        .seed
                        .wrapping_add((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                ),
                injected: 0,
            })
            .collect();
        *self.state.rules.lock().unwrap() = active;
    }

    /// Forward everything from now on.
    pub fn clear_rules(&self) {
        self.set_rules(Vec::new());
    }

    pub fn injected(&self) -> Injected {
        self.state.injected.lock().unwrap().clone()
    }

    /// Requests received for `operation`, faulted or not.
    pub fn seen(&self, operation: &str) -> u64 {
        self.state
            .seen
            .lock()
            .unwrap()
            .get(operation)
            .copied()
            .unwrap_or(0)
    }

    pub fn upstream_failures(&self) -> u64 {
        self.state.upstream_failures.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ResetConnection> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Err(ResetConnection),
    };
    let operation = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    *state
        .seen
        .lock()
        .unwrap()
        .entry(operation.clone())
        .or_default() += 1;

    let fault = {
        let mut rules = state.rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| r.rule.matches(&operation, &body))
            .filter(|r| r.rule.limit.is_none_or(|limit| r.injected < limit))
            .and_then(|r| {
                (r.rng.f64() < r.rule.rate).then(|| {
                    let fault = r.rule.faults[r.injected % r.rule.faults.len()];
                    r.injected += 1;
                    fault
                })
            })
    };
    if let Some(fault) = fault {
        *state
            .injected
            .lock()
            .unwrap()
            .0
            .entry((operation.clone(), fault.kind()))
            .or_default() += 1;
        if let Some((status, text)) = fault.error_answer() {
            let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
            *response.status_mut() = status;
            let headers = response.headers_mut();
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/x-amz-json-1.0"),
            );
            headers.insert(
                "x-amzn-requestid",
                HeaderValue::from_str(&format!("FAULTPROXY{:016X}", fastrand::u64(..))).unwrap(),
            );
            return Ok(response);
        }
        match fault {
            Fault::Reset => return Err(ResetConnection),
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Rewrite { from, to } => {
                let answer = forward(&state, parts, body).await;
                let (parts, body) = answer.into_parts();
                let text = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let text = String::from_utf8_lossy(&text).replace(from, to);
                // The SDK checks DynamoDB's CRC32 of the body when it is given: drop it.
                let mut parts = parts;
                parts.headers.remove("x-amz-crc32");
                return Ok(Response::from_parts(parts, Full::new(Bytes::from(text))));
            }
            _ => unreachable!("error answers returned above"),
        }
    }
    Ok(forward(&state, parts, body).await)
}

/// Hop-by-hop headers, which a proxy does not pass on; the length is set again by hyper.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    ] {
        headers.remove(name);
    }
}

async fn forward(
    state: &State,
    parts: hyper::http::request::Parts,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut request = Request::new(Full::new(body));
    *request.method_mut() = parts.method;
    *request.uri_mut() = format!("{}{path}", state.upstream)
        .parse()
        .expect("upstream URI");
    *request.headers_mut() = parts.headers;
    strip_hop_by_hop(request.headers_mut());
    let answer = async {
        let response = state
            .client
            .request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok::<_, String>((parts, body))
    }
    .await;
    match answer {
        Ok((mut parts, body)) => {
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, Full::new(body))
        }
        Err(why) => {
            state.upstream_failures.fetch_add(1, Ordering::SeqCst);
            let mut response = Response::new(Full::new(Bytes::from(format!(
                "fault proxy: DynamoDB Local did not answer: {why}"
            ))));
            *response.status_mut() = StatusCode::BAD_GATEWAY;
            response
        }
    }
}
