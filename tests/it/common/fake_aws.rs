//! Stand-ins for the AWS endpoints DynamoDB Local does not provide, so the real `stream-verifier`
//! binary can run end to end on this machine:
//!
//! - [`FakeSts`]: an STS endpoint that records every request (the form parameters and the signing
//!   access key) and answers AssumeRole with fixed credentials;
//! - [`FakeRuntime`]: the Lambda Runtime API, handing out one event and capturing what the function
//!   posts back;
//! - [`run_stream_verifier`]: the binary under that runtime, its stdout and stderr captured.
//!
//! Each listens on 127.0.0.1:0 and stops when dropped.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// A request as the fakes saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A tiny HTTP/1 server answering every request with `answer`; stops when dropped.
struct Server {
    addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve<F, Fut>(answer: F) -> Server
where
    F: Fn(Seen) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().unwrap();
    let answer = Arc::new(answer);
    let task = tokio::spawn(async move {
        // Owned here, so aborting the accept loop also ends every connection.
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let answer = Arc::clone(&answer);
            connections.spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let answer = Arc::clone(&answer);
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let seen = Seen {
                            method: parts.method.to_string(),
                            path: parts.uri.path().to_string(),
                            headers: parts
                                .headers
                                .iter()
                                .map(|(k, v)| {
                                    (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into())
                                })
                                .collect(),
                            body: String::from_utf8_lossy(&body).into_owned(),
                        };
                        Ok::<_, Infallible>(answer(seen).await)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
            while connections.try_join_next().is_some() {}
        }
    });
    Server { addr, task }
}

fn respond(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    response
}

/// `application/x-www-form-urlencoded` into name → value (`+` is a space, `%XX` a byte).
pub fn parse_form(body: &str) -> BTreeMap<String, String> {
    fn decode(text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < bytes.len() => {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                    match u8::from_str_radix(hex, 16) {
                        Ok(b) => {
                            out.push(b);
                            i += 2;
                        }
                        Err(_) => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(name), decode(value))
        })
        .collect()
}

/// Credentials the fake STS hands out.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
}

/// One call to the fake STS.
#[derive(Debug, Clone)]
pub struct StsCall {
    /// The form parameters (`Action`, `Version`, `RoleArn`, `RoleSessionName`, `ExternalId`, ...).
    pub params: BTreeMap<String, String>,
    /// The access key id in the SigV4 `Authorization` header: who called.
    pub signed_by: Option<String>,
}

/// An STS endpoint answering `AssumeRole` with [`IssuedCredentials`] and recording every call.
pub struct FakeSts {
    server: Server,
    calls: Arc<Mutex<Vec<StsCall>>>,
}

impl FakeSts {
    pub async fn start(issued: IssuedCredentials) -> FakeSts {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&calls);
        let server = serve(move |seen: Seen| {
            let params = parse_form(&seen.body);
            let signed_by = seen.headers.get("authorization").and_then(|a| {
                let credential = a.split("Credential=").nth(1)?;
                Some(credential.split('/').next()?.to_string())
            });
            let action = params.get("Action").cloned().unwrap_or_default();
            record.lock().unwrap().push(StsCall { params, signed_by });
            let answer = if action == "AssumeRole" {
                respond(StatusCode::OK, "text/xml", assume_role_response(&issued))
            } else {
                respond(
                    StatusCode::BAD_REQUEST,
                    "text/xml",
                    format!(
                        r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>InvalidAction</Code><Message>fake STS: {action:?} is not implemented</Message></Error><RequestId>fake</RequestId></ErrorResponse>"#
                    ),
                )
            };
            async move { answer }
        })
        .await;
        FakeSts { server, calls }
    }

    /// For `AWS_ENDPOINT_URL_STS`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn calls(&self) -> Vec<StsCall> {
        self.calls.lock().unwrap().clone()
    }
}

/// The AssumeRole answer as STS sends it (the example of the AssumeRole API reference). Expires far
/// in the future, so the SDK never asks again during a test.
fn assume_role_response(issued: &IssuedCredentials) -> String {
    format!(
        r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::222222222222:assumed-role/verifier-read/dynamodb-migration-verifier</Arn>
      <AssumedRoleId>AROAFAKEFAKEFAKEFAKE:dynamodb-migration-verifier</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{}</AccessKeyId>
      <SecretAccessKey>{}</SecretAccessKey>
      <SessionToken>{}</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>c6104cbe-af31-11e0-8154-cbc7ccf896c7</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"#,
        issued.access_key_id, issued.secret_access_key, issued.session_token
    )
}

/// What the function posted back to the Runtime API.
#[derive(Debug, Clone, PartialEq)]
pub enum Posted {
    /// `POST /runtime/invocation/{id}/response`.
    Response(String),
    /// `POST /runtime/invocation/{id}/error`.
    Error(String),
    /// `POST /runtime/init/error`.
    InitError(String),
}

impl Posted {
    pub fn body(&self) -> &str {
        match self {
            Posted::Response(b) | Posted::Error(b) | Posted::InitError(b) => b,
        }
    }
}

struct RuntimeState {
    event: Mutex<Option<String>>,
    posted: Mutex<Option<Posted>>,
    done: Notify,
}

const REQUEST_ID: &str = "8476a536-e9f4-11e8-9739-2dfe598c3fcd";

/// The Lambda Runtime API with one invocation: `GET /2018-06-01/runtime/invocation/next` returns the
/// event once (later calls wait forever, as Lambda freezes an idle function), and the function's
/// answer is kept.
pub struct FakeRuntime {
    server: Server,
    state: Arc<RuntimeState>,
}

impl FakeRuntime {
    pub async fn start(event: &serde_json::Value) -> FakeRuntime {
        let state = Arc::new(RuntimeState {
            event: Mutex::new(Some(event.to_string())),
            posted: Mutex::new(None),
            done: Notify::new(),
        });
        let shared = Arc::clone(&state);
        let server = serve(move |seen: Seen| {
            let state = Arc::clone(&shared);
            async move {
                let path = seen.path.as_str();
                if seen.method == "GET" && path == "/2018-06-01/runtime/invocation/next" {
                    let Some(event) = state.event.lock().unwrap().take() else {
                        return std::future::pending().await;
                    };
                    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
                        + Duration::from_secs(30);
                    let mut response = respond(StatusCode::OK, "application/json", event);
                    let headers = response.headers_mut();
                    headers.insert("lambda-runtime-aws-request-id", REQUEST_ID.parse().unwrap());
                    headers.insert(
                        "lambda-runtime-deadline-ms",
                        deadline.as_millis().to_string().parse().unwrap(),
                    );
                    headers.insert(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:111111111111:function:stream-verifier"
                            .parse()
                            .unwrap(),
                    );
                    headers.insert(
                        "lambda-runtime-trace-id",
                        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                            .parse()
                            .unwrap(),
                    );
                    return response;
                }
                let posted = if path == "/2018-06-01/runtime/init/error" {
                    Some(Posted::InitError(seen.body))
                } else if path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/response") {
                    Some(Posted::Response(seen.body))
                } else if path == format!("/2018-06-01/runtime/invocation/{REQUEST_ID}/error") {
                    Some(Posted::Error(seen.body))
                } else {
                    None
                };
                match posted {
                    Some(posted) => {
                        *state.posted.lock().unwrap() = Some(posted);
                        state.done.notify_one();
                        respond(
                            StatusCode::ACCEPTED,
                            "application/json",
                            r#"{"status":"OK"}"#.into(),
                        )
                    }
                    None => respond(
                        StatusCode::NOT_FOUND,
                        "application/json",
                        format!(r#"{{"errorMessage":"fake runtime: no route {path}"}}"#),
                    ),
                }
            }
        })
        .await;
        FakeRuntime { server, state }
    }

    /// For `AWS_LAMBDA_RUNTIME_API` (host:port, as Lambda sets it).
    pub fn api(&self) -> String {
        self.server.addr.to_string()
    }

    /// The function's answer, once posted.
    pub async fn posted(&self, timeout: Duration) -> Option<Posted> {
        let wait = async {
            loop {
                let notified = self.state.done.notified();
                if let Some(posted) = self.state.posted.lock().unwrap().clone() {
                    return posted;
                }
                notified.await;
            }
        };
        tokio::time::timeout(timeout, wait).await.ok()
    }
}

/// One run of the `stream-verifier` binary.
#[derive(Debug)]
pub struct BinaryRun {
    /// `None` if nothing was posted within the time allowed.
    pub posted: Option<Posted>,
    pub stdout: String,
    pub stderr: String,
}

impl BinaryRun {
    /// Everything the run wrote and posted, for searching.
    pub fn everything(&self) -> String {
        format!(
            "--- posted: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.posted, self.stdout, self.stderr
        )
    }
}

/// Runs the Lambda binary `binary` on one `event` under a [`FakeRuntime`], with only `env` in its
/// environment (plus the runtime's variables), and stops it once it has answered (a Lambda function
/// loops waiting for the next event).
pub async fn run_stream_verifier(
    binary: &str,
    env: &[(&str, String)],
    event: &serde_json::Value,
) -> BinaryRun {
    let runtime = FakeRuntime::start(event).await;
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", runtime.api())
        .env("AWS_LAMBDA_FUNCTION_NAME", "stream-verifier")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/stream-verifier")
        .env(
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2026/01/01/[$LATEST]0123456789abcdef",
        )
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the stream-verifier binary");
    // Read while it runs: a full pipe (debug logs) would block the binary before it answers.
    let read_all = |pipe: Option<Box<dyn tokio::io::AsyncRead + Send + Unpin>>| {
        tokio::spawn(async move {
            let mut text = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = tokio::io::AsyncReadExt::read_to_end(&mut pipe, &mut text).await;
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = read_all(child.stdout.take().map(|p| Box::new(p) as _));
    let stderr = read_all(child.stderr.take().map(|p| Box::new(p) as _));
    // Until it answers, or exits without answering (a start-up failure).
    let posted = tokio::select! {
        posted = runtime.posted(Duration::from_secs(15)) => posted,
        _ = child.wait() => runtime.posted(Duration::from_millis(100)).await,
    };
    // Stopped by its own handle once it has answered: its output up to the answer is complete, since
    // the binary writes whole lines (stdout is line-buffered, stderr unbuffered) before answering.
    let _ = child.start_kill();
    let _ = child.wait().await;
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    BinaryRun {
        posted,
        stdout,
        stderr,
    }
}

/// An SQS endpoint answering GetQueueAttributes (the JSON protocol) with the depth set by
/// [`FakeSqs::set_depth`]: `(visible, in flight, delayed)`.
pub struct FakeSqs {
    server: Server,
    depth: Arc<Mutex<(u64, u64, u64)>>,
}

impl FakeSqs {
    pub async fn start() -> FakeSqs {
        let depth = Arc::new(Mutex::new((0, 0, 0)));
        let read = Arc::clone(&depth);
        let server = serve(move |seen: Seen| {
            let target = seen.headers.get("x-amz-target").cloned().unwrap_or_default();
            let (visible, in_flight, delayed) = *read.lock().unwrap();
            let answer = if target == "AmazonSQS.GetQueueAttributes" {
                respond(
                    StatusCode::OK,
                    "application/x-amz-json-1.0",
                    format!(
                        r#"{{"Attributes":{{"ApproximateNumberOfMessages":"{visible}","ApproximateNumberOfMessagesNotVisible":"{in_flight}","ApproximateNumberOfMessagesDelayed":"{delayed}"}}}}"#
                    ),
                )
            } else {
                respond(
                    StatusCode::BAD_REQUEST,
                    "application/x-amz-json-1.0",
                    format!(r#"{{"__type":"com.amazonaws.sqs#InvalidAction","message":"fake SQS: {target:?} is not implemented"}}"#),
                )
            };
            async move { answer }
        })
        .await;
        FakeSqs { server, depth }
    }

    /// For `AWS_ENDPOINT_URL_SQS`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn set_depth(&self, visible: u64, in_flight: u64, delayed: u64) {
        *self.depth.lock().unwrap() = (visible, in_flight, delayed);
    }
}

/// A Lambda endpoint answering ListEventSourceMappings with the mappings set by
/// [`FakeLambda::set_mappings`]: `(function name, last modified, epoch seconds)`, each Enabled,
/// its last processing result OK; and GetFunctionConfiguration with the timeout set by
/// [`FakeLambda::set_timeout`] (3 s unless set).
pub struct FakeLambda {
    server: Server,
    mappings: Arc<Mutex<Vec<(String, u64)>>>,
    timeout_s: Arc<Mutex<u32>>,
}

impl FakeLambda {
    pub async fn start() -> FakeLambda {
        let mappings: Arc<Mutex<Vec<(String, u64)>>> = Arc::new(Mutex::new(Vec::new()));
        let timeout_s = Arc::new(Mutex::new(3));
        let (read, timeout) = (Arc::clone(&mappings), Arc::clone(&timeout_s));
        let server = serve(move |seen: Seen| {
            let answer = if seen.path.starts_with("/2015-03-31/event-source-mappings") {
                let listed: Vec<String> = read
                    .lock()
                    .unwrap()
                    .iter()
                    .enumerate()
                    .map(|(i, (function, at))| {
                        format!(
                            r#"{{"UUID":"mapping-{i}","FunctionArn":"arn:aws:lambda:us-east-1:000000000000:function:{function}","State":"Enabled","LastModified":{at},"LastProcessingResult":"OK"}}"#
                        )
                    })
                    .collect();
                respond(
                    StatusCode::OK,
                    "application/json",
                    format!(r#"{{"EventSourceMappings":[{}]}}"#, listed.join(",")),
                )
            } else if seen.path.starts_with("/2015-03-31/functions/")
                && seen.path.ends_with("/configuration")
            {
                respond(
                    StatusCode::OK,
                    "application/json",
                    format!(r#"{{"Timeout":{}}}"#, timeout.lock().unwrap()),
                )
            } else {
                respond(
                    StatusCode::NOT_FOUND,
                    "application/json",
                    format!(r#"{{"Type":"User","message":"fake Lambda: {} is not implemented"}}"#, seen.path),
                )
            };
            async move { answer }
        })
        .await;
        FakeLambda {
            server,
            mappings,
            timeout_s,
        }
    }

    /// For `AWS_ENDPOINT_URL_LAMBDA`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn set_mappings(&self, mappings: &[(&str, u64)]) {
        *self.mappings.lock().unwrap() = mappings
            .iter()
            .map(|(f, at)| (f.to_string(), *at))
            .collect();
    }

    /// The function's timeout, as GetFunctionConfiguration answers it.
    pub fn set_timeout(&self, seconds: u32) {
        *self.timeout_s.lock().unwrap() = seconds;
    }
}

/// Lambda's delivery metrics as [`FakeCloudWatch`] answers them: `(minute's start, epoch ms,
/// value)` of each series.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub iterator_age: Vec<(u64, f64)>,
    pub errors: Vec<(u64, f64)>,
    pub throttles: Vec<(u64, f64)>,
    /// Each series' `StatusCode` (`Complete` unless set).
    pub status: Option<&'static str>,
}

/// A CloudWatch endpoint answering GetMetricData (Smithy RPC v2 CBOR) with the metrics set by
/// [`FakeCloudWatch::set`], newest first as CloudWatch does; the functions asked for are kept.
pub struct FakeCloudWatch {
    server: Server,
    metrics: Arc<Mutex<Metrics>>,
    asked: Arc<Mutex<Vec<String>>>,
}

impl FakeCloudWatch {
    pub async fn start() -> FakeCloudWatch {
        let metrics = Arc::new(Mutex::new(Metrics::default()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (read, seen_asks) = (Arc::clone(&metrics), Arc::clone(&asked));
        let server = serve(move |seen: Seen| {
            let answer = if seen.path.ends_with("/operation/GetMetricData") {
                seen_asks.lock().unwrap().push(seen.body.clone());
                let mut response = respond(StatusCode::OK, "application/cbor", String::new());
                *response.body_mut() = Full::new(Bytes::from(metric_data(&read.lock().unwrap())));
                response
                    .headers_mut()
                    .insert("smithy-protocol", "rpc-v2-cbor".parse().unwrap());
                response
            } else {
                respond(
                    StatusCode::NOT_FOUND,
                    "application/json",
                    format!("fake CloudWatch: {} is not implemented", seen.path),
                )
            };
            async move { answer }
        })
        .await;
        FakeCloudWatch {
            server,
            metrics,
            asked,
        }
    }

    /// For `AWS_ENDPOINT_URL_CLOUDWATCH`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr)
    }

    pub fn set(&self, metrics: Metrics) {
        *self.metrics.lock().unwrap() = metrics;
    }

    /// Whether a GetMetricData request named `function`.
    pub fn asked_for(&self, function: &str) -> bool {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .any(|b| b.contains(function))
    }
}

/// A GetMetricData answer: one result per series, ids as `aws::delivery` asks them.
fn metric_data(m: &Metrics) -> Vec<u8> {
    use aws_smithy_types::DateTime;
    let mut e = aws_smithy_cbor::Encoder::new(Vec::new());
    e.map(1).str("MetricDataResults").array(3);
    for (id, series) in [
        ("age", &m.iterator_age),
        ("errors", &m.errors),
        ("throttles", &m.throttles),
    ] {
        let newest_first: Vec<&(u64, f64)> = series.iter().rev().collect();
        let status = m.status.unwrap_or("Complete");
        e.map(4).str("Id").str(id).str("StatusCode").str(status);
        e.str("Timestamps").array(newest_first.len());
        for (at, _) in &newest_first {
            e.timestamp(&DateTime::from_millis(*at as i64));
        }
        e.str("Values").array(newest_first.len());
        for (_, value) in &newest_first {
            e.double(*value);
        }
    }
    e.into_writer()
}
