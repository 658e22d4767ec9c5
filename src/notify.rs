//! Webhook notifications: Slack-compatible JSON POSTed from a background task, so a slow or
//! failing webhook never holds up the plan or a rollback.
//!
//! # Payload
//!
//! One JSON object per message, accepted as-is by a Slack incoming webhook (which reads only
//! `text`) and by anything that wants the details:
//!
//! ```json
//! {
//!   "text": "checkout 2.4.0: error rate breached in production — error_rate: 2.1 % &gt; 1 %",
//!   "warroom": {
//!     "plan": "checkout 2.4.0",
//!     "phase": "canary",            // null when not in a phase
//!     "environment": "production",  // null when not tied to one
//!     "event": "breach",            // phase | breach | rollback | done | step
//!     "operator": "ana",            // null when unknown
//!     "figures": { "error_rate": "2.1 % > 1 %" }
//!   }
//! }
//! ```
//!
//! `text` is the message's line followed by its figures, on one line (control characters become
//! spaces), so a reader of the channel needs nothing else. `&`, `<` and `>` in `text` are written
//! as `&amp;`, `&lt;` and `&gt;`, as Slack requires; the `warroom` object carries raw values.
//! No `blocks` and no `attachments`.
//!
//! # Delivery
//!
//! One task sends the messages in order. Each message gets up to [`MAX_ATTEMPTS`] attempts, each
//! limited to [`Timing::request_timeout`]. Connection errors, timeouts, 429 and 5xx are retried
//! after an exponential backoff (1 s, 2 s, 4 s, 8 s, 16 s, ±20 % jitter), or after the answer's
//! `Retry-After` when it has one (capped at [`RETRY_AFTER_CAP`]). Any other answer that is not
//! 2xx ends the message at once. Every attempt is reported to the caller for the journal; no
//! report ever holds the webhook URL beyond what [`mask_url`] shows, since its path is the secret.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use indexmap::IndexMap;
use rand::Rng;
use serde::Serialize;
use tokio::sync::{mpsc, watch};

use crate::plan::{Notify, NotifyEvent};

/// Attempts per message before giving up (the first plus five retries).
pub const MAX_ATTEMPTS: u32 = 6;

/// The longest `Retry-After` obeyed: a receiver asking for more would stall every later message.
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(60);

/// Longest part of an error answer's body quoted in a report.
const SNIPPET_CHARS: usize = 120;

/// What happened, for the `event` field and the plan's `on` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Event {
    /// A phase started or ended.
    Phase,
    /// A threshold was breached.
    Breach,
    /// A rollback started or ended.
    Rollback,
    /// The plan completed.
    Done,
    /// A `notify` step of the plan: always sent, whatever `on` says.
    Step,
}

impl Event {
    /// The name in the payload's `event` field.
    pub fn name(self) -> &'static str {
        match self {
            Event::Phase => "phase",
            Event::Breach => "breach",
            Event::Rollback => "rollback",
            Event::Done => "done",
            Event::Step => "step",
        }
    }

    /// The plan's name for this event; `None` for one the plan cannot filter out.
    fn filter(self) -> Option<NotifyEvent> {
        match self {
            Event::Phase => Some(NotifyEvent::Phase),
            Event::Breach => Some(NotifyEvent::Breach),
            Event::Rollback => Some(NotifyEvent::Rollback),
            Event::Done => Some(NotifyEvent::Done),
            Event::Step => None,
        }
    }
}

impl From<NotifyEvent> for Event {
    fn from(event: NotifyEvent) -> Event {
        match event {
            NotifyEvent::Phase => Event::Phase,
            NotifyEvent::Breach => Event::Breach,
            NotifyEvent::Rollback => Event::Rollback,
            NotifyEvent::Done => Event::Done,
        }
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub event: Event,
    /// The human line, e.g. "checkout 2.4.0: phase canary started in production".
    pub text: String,
    pub plan: String,
    pub phase: Option<String>,
    pub environment: Option<String>,
    pub operator: Option<String>,
    /// Numbers behind it, e.g. ("error_rate", "2.1 % > 1 %"), ("weight", "30 %").
    pub figures: Vec<(String, String)>,
}

impl Message {
    /// A message with no phase, environment, operator or figures; set those fields as needed.
    pub fn new(event: Event, plan: impl Into<String>, text: impl Into<String>) -> Message {
        Message {
            event,
            text: text.into(),
            plan: plan.into(),
            phase: None,
            environment: None,
            operator: None,
            figures: Vec::new(),
        }
    }

    /// The JSON body described in the module doc.
    pub fn payload(&self) -> serde_json::Value {
        #[derive(Serialize)]
        struct Payload<'a> {
            text: String,
            warroom: Details<'a>,
        }
        #[derive(Serialize)]
        struct Details<'a> {
            plan: &'a str,
            phase: Option<&'a str>,
            environment: Option<&'a str>,
            event: &'static str,
            operator: Option<&'a str>,
            figures: IndexMap<&'a str, &'a str>,
        }
        let payload = Payload {
            text: self.line(),
            warroom: Details {
                plan: &self.plan,
                phase: self.phase.as_deref(),
                environment: self.environment.as_deref(),
                event: self.event.name(),
                operator: self.operator.as_deref(),
                figures: self
                    .figures
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect(),
            },
        };
        // Strings and maps of strings always serialize; Null would only mean a serde bug.
        serde_json::to_value(payload).unwrap_or(serde_json::Value::Null)
    }

    /// `text` plus the figures, on one line, escaped for Slack.
    fn line(&self) -> String {
        let mut line = one_line(&self.text);
        if !self.figures.is_empty() {
            let figures: Vec<String> = self
                .figures
                .iter()
                .map(|(k, v)| format!("{}: {}", one_line(k), one_line(v)))
                .collect();
            line.push_str(" — ");
            line.push_str(&figures.join(", "));
        }
        slack_escape(&line)
    }
}

/// Control characters (newlines included) become spaces: the text is one readable line.
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// Slack reads `<…>` as links and mentions and `&…;` as entities; these three must be escaped.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The result of one POST attempt, for the journal.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    /// The id [`Notifier::send`] returned.
    pub message_id: u64,
    /// 1 for the first attempt, up to [`MAX_ATTEMPTS`].
    pub attempt: u32,
    /// What the message was about.
    pub event: Event,
    pub outcome: AttemptOutcome,
    /// When the attempt's outcome was known.
    pub at: SystemTime,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum AttemptOutcome {
    /// The receiver answered 2xx.
    Delivered { status: u16 },
    /// A transient failure; the next attempt comes `after` this long.
    Retrying {
        status_or_error: String,
        after: Duration,
    },
    /// The message is dropped: a non-retryable answer, or the last attempt failed.
    GaveUp { why: String },
}

/// How long delivery waits; [`Timing::default`] is the production setting, tests shorten it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Wait after the first failed attempt; doubles after each further failure (before jitter).
    pub backoff_base: Duration,
    /// Limit for one POST, connection to end of answer.
    pub request_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            backoff_base: Duration::from_secs(1),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the webhook HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct ClientError(String);

/// An HTTP client fit for webhooks: redirects are not followed (a POST redirected with 301/302
/// becomes a GET and loses its body, so a redirect is reported instead).
///
/// Installs the process-wide rustls provider (ring) if none is installed yet, as `main` does,
/// because building a client without one panics.
pub fn webhook_client() -> Result<reqwest::Client, ClientError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| ClientError(e.without_url().to_string()))
}

/// Queues messages for the delivery task. Cheap to clone; the task ends once every clone is
/// dropped and the queue is empty.
#[derive(Clone)]
pub struct Notifier {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    on: Vec<NotifyEvent>,
    masked: String,
    queue: Mutex<Queue>,
    /// The id of the last message delivered or given up.
    done: watch::Receiver<u64>,
}

/// The sender and the last id, under one lock so that ids reach the task in increasing order
/// (which is what lets [`Notifier::flush`] wait for one id).
struct Queue {
    last_id: u64,
    tx: mpsc::UnboundedSender<(u64, Message)>,
}

// The webhook's path is a secret: show only the masked URL.
impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("Notifier(off)"),
            Some(inner) => f
                .debug_struct("Notifier")
                .field("webhook", &inner.masked)
                .field("on", &inner.on)
                .finish_non_exhaustive(),
        }
    }
}

impl Notifier {
    /// A notifier that sends nothing, for runs without `notify`.
    pub fn off() -> Notifier {
        Notifier { inner: None }
    }

    /// Starts the delivery task with the production [`Timing`]. `report` is called (from the
    /// task) for every attempt. Must be called inside a Tokio runtime; outside one, or without a
    /// webhook, the notifier is off.
    pub fn start(
        config: Option<&Notify>,
        client: reqwest::Client,
        report: impl Fn(Attempt) + Send + Sync + 'static,
    ) -> Notifier {
        Notifier::start_with(config, client, report, Timing::default())
    }

    /// [`Notifier::start`] with other timings (tests).
    pub fn start_with(
        config: Option<&Notify>,
        client: reqwest::Client,
        report: impl Fn(Attempt) + Send + Sync + 'static,
        timing: Timing,
    ) -> Notifier {
        let Some(config) = config else {
            return Notifier::off();
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("notifications are off: no async runtime to deliver them from");
            return Notifier::off();
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done_rx) = watch::channel(0);
        let target = Target::new(&config.webhook);
        let masked = target.masked.clone();
        runtime.spawn(deliver_all(rx, done_tx, client, target, timing, report));
        Notifier {
            inner: Some(Arc::new(Inner {
                on: config.on.clone(),
                masked,
                queue: Mutex::new(Queue { last_id: 0, tx }),
                done: done_rx,
            })),
        }
    }

    /// Whether `event` would be sent: there is a webhook, and the event is a step, or the plan's
    /// `on` is empty (every event), or it lists the event.
    pub fn wants(&self, event: Event) -> bool {
        let Some(inner) = &self.inner else {
            return false;
        };
        match event.filter() {
            None => true,
            Some(e) => inner.on.is_empty() || inner.on.contains(&e),
        }
    }

    /// Queues the message if wanted and returns its id (`None` when not wanted, without a
    /// webhook, or once the delivery task is gone). Never blocks on delivery, never fails.
    pub fn send(&self, message: Message) -> Option<u64> {
        if !self.wants(message.event) {
            return None;
        }
        let inner = self.inner.as_ref()?;
        // Held only for an unbounded send, which does not wait; a poisoned lock still holds a
        // consistent queue (both fields change only after the send succeeded).
        let mut queue = inner
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let id = queue.last_id + 1;
        queue.tx.send((id, message)).ok()?;
        queue.last_id = id;
        Some(id)
    }

    /// Waits, at most `limit`, until every message queued so far is delivered or given up: used
    /// at the end of a run so the `done` message is not lost when the process exits.
    pub async fn flush(&self, limit: Duration) {
        let Some(inner) = &self.inner else {
            return;
        };
        let target = inner
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .last_id;
        if target == 0 {
            return;
        }
        let mut done = inner.done.clone();
        // An error means the task is gone: nothing more will be delivered, stop waiting.
        let _ = tokio::time::timeout(limit, done.wait_for(|d| *d >= target)).await;
    }
}

/// The webhook URL, parsed once, with what may be shown of it and what must never be.
struct Target {
    url: Option<reqwest::Url>,
    masked: String,
    /// Substrings of the URL to remove from any text before it is reported.
    secrets: Vec<String>,
}

impl Target {
    fn new(raw: &str) -> Target {
        let url = reqwest::Url::parse(raw.trim()).ok();
        let mut secrets = vec![raw.to_string(), raw.trim().to_string()];
        if let Some(url) = &url {
            secrets.push(url.as_str().to_string());
            if url.path().len() > 1 {
                secrets.push(url.path().to_string());
            }
            if let Some(query) = url.query() {
                secrets.push(format!("{}?{query}", url.path()));
                secrets.push(query.to_string());
            }
            secrets.extend(url.password().map(str::to_string));
            if !url.username().is_empty() {
                secrets.push(url.username().to_string());
            }
        }
        secrets.retain(|s| !s.is_empty());
        // Longest first, so the whole URL is replaced before its parts are.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Target {
            url,
            masked: mask_url(raw),
            secrets,
        }
    }

    /// `text` with every secret part of the URL replaced by the masked URL.
    fn scrub(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), &self.masked);
            }
        }
        text
    }
}

/// The delivery task: messages in queue order, one at a time.
async fn deliver_all(
    mut rx: mpsc::UnboundedReceiver<(u64, Message)>,
    done: watch::Sender<u64>,
    client: reqwest::Client,
    target: Target,
    timing: Timing,
    report: impl Fn(Attempt) + Send + Sync + 'static,
) {
    while let Some((id, message)) = rx.recv().await {
        let body = message.payload().to_string();
        deliver(
            (id, message.event),
            &body,
            &client,
            &target,
            timing,
            &report,
        )
        .await;
        done.send_replace(id);
    }
}

/// Up to [`MAX_ATTEMPTS`] POSTs of one message, each reported.
async fn deliver(
    (id, event): (u64, Event),
    body: &str,
    client: &reqwest::Client,
    target: &Target,
    timing: Timing,
    report: &impl Fn(Attempt),
) {
    for attempt in 1..=MAX_ATTEMPTS {
        let outcome = match post(client, target, body, timing.request_timeout).await {
            Ok(status) => AttemptOutcome::Delivered { status },
            Err(failure) => {
                let why = target.scrub(&failure.to_string());
                match failure.retry_after() {
                    Some(_) if attempt == MAX_ATTEMPTS => AttemptOutcome::GaveUp {
                        why: format!("{why}; gave up after {MAX_ATTEMPTS} attempts"),
                    },
                    Some(asked) => AttemptOutcome::Retrying {
                        status_or_error: why,
                        after: asked
                            .map(|d| d.min(RETRY_AFTER_CAP))
                            .unwrap_or_else(|| backoff(timing.backoff_base, attempt)),
                    },
                    None => AttemptOutcome::GaveUp { why },
                }
            }
        };
        let wait = match &outcome {
            AttemptOutcome::Retrying { after, .. } => Some(*after),
            _ => None,
        };
        report(Attempt {
            message_id: id,
            attempt,
            event,
            outcome,
            at: SystemTime::now(),
        });
        match wait {
            Some(after) => tokio::time::sleep(after).await,
            None => return,
        }
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    /// A non-2xx answer; `retry_after` is the answer's `Retry-After`, when it has one.
    #[error("HTTP {}{detail}", .status.as_u16())]
    Status {
        status: reqwest::StatusCode,
        retry_after: Option<Duration>,
        detail: String,
    },
    #[error("no answer within {} s", .0.as_secs_f64())]
    Timeout(Duration),
    /// Connection and protocol errors, worded without the URL.
    #[error("{0}")]
    Transport(String),
    /// The request could not even be built (bad URL): retrying cannot help.
    #[error("{0}")]
    Unsendable(String),
}

impl Failure {
    /// `None`: give up now. `Some(asked)`: retry, after `asked` if the receiver said when.
    fn retry_after(&self) -> Option<Option<Duration>> {
        match self {
            Failure::Status {
                status,
                retry_after,
                ..
            } if *status == reqwest::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() => {
                Some(*retry_after)
            }
            Failure::Status { .. } | Failure::Unsendable(_) => None,
            Failure::Timeout(_) | Failure::Transport(_) => Some(None),
        }
    }
}

/// One POST; `Ok` with the status when it is 2xx.
async fn post(
    client: &reqwest::Client,
    target: &Target,
    body: &str,
    timeout: Duration,
) -> Result<u16, Failure> {
    let Some(url) = &target.url else {
        return Err(Failure::Unsendable(format!(
            "webhook {} is not a URL",
            target.masked
        )));
    };
    let request = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .timeout(timeout);
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) if e.is_timeout() => return Err(Failure::Timeout(timeout)),
        Err(e) if e.is_builder() => return Err(Failure::Unsendable(describe(e))),
        Err(e) => return Err(Failure::Transport(describe(e))),
    };
    let status = response.status();
    if status.is_success() {
        return Ok(status.as_u16());
    }
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    let mut detail = String::new();
    if let Some(reason) = status.canonical_reason() {
        detail.push(' ');
        detail.push_str(reason);
    }
    if status.is_redirection() {
        detail.push_str(" (redirects are not followed)");
    }
    let snippet = snippet(response).await;
    if !snippet.is_empty() {
        detail.push_str(": ");
        detail.push_str(&snippet);
    }
    Err(Failure::Status {
        status,
        retry_after,
        detail,
    })
}

/// The start of an error answer's body, on one line: receivers such as Slack say why there
/// ("invalid_payload", "no_text"). Empty when unreadable.
async fn snippet(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < SNIPPET_CHARS * 4 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let words: Vec<&str> = text.split_whitespace().collect();
    let line = words.join(" ");
    match line.char_indices().nth(SNIPPET_CHARS) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// A reqwest error and its causes, without the URL (reqwest puts the whole URL in its text).
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The wait after failed attempt `attempt` (1-based): base × 2^(attempt−1), ±20 %.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let nominal = base.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
    let factor: f64 = rand::rng().random_range(0.8..=1.2);
    Duration::try_from_secs_f64(nominal.as_secs_f64() * factor).unwrap_or(nominal)
}

/// A `Retry-After` value (RFC 9110 §10.2.3): delta-seconds, or an HTTP-date (IMF-fixdate, or
/// the obsolete RFC 850 and asctime forms) turned into the wait from `now`; a date already past
/// is no wait. `None` when it is neither. Not capped here.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits to fit a u64 is still "a long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let when = http_date(value)?;
    Some(
        SystemTime::from(when)
            .duration_since(now)
            .unwrap_or(Duration::ZERO),
    )
}

/// An HTTP-date in any of the three forms a recipient must accept.
fn http_date(value: &str) -> Option<jiff::Timestamp> {
    static RFC2822: jiff::fmt::rfc2822::DateTimeParser = jiff::fmt::rfc2822::DateTimeParser::new();
    if let Ok(ts) = RFC2822.parse_timestamp(value) {
        return Some(ts);
    }
    // "Sunday, 06-Nov-94 08:49:37 GMT" and "Sun Nov  6 08:49:37 1994", both UTC.
    ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
        .iter()
        .find_map(|format| {
            jiff::fmt::strtime::parse(format, value)
                .and_then(|tm| tm.to_datetime())
                .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC))
                .ok()
                .map(|z| z.timestamp())
        })
}

/// The webhook URL with its secret part hidden: `scheme://host[:port]/…`, never the user, the
/// password, the path or the query. E.g. "https://hooks.slack.com/services/T0/B0/XYZ" →
/// "https://hooks.slack.com/…". Anything that is not a URL with a host gives "(invalid URL)",
/// never the input.
pub fn mask_url(url: &str) -> String {
    const INVALID: &str = "(invalid URL)";
    let Ok(parsed) = reqwest::Url::parse(url.trim()) else {
        return INVALID.to_string();
    };
    let Some(host) = parsed.host_str().filter(|h| !h.is_empty()) else {
        return INVALID.to_string();
    };
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{host}{port}/…", parsed.scheme())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_url_keeps_scheme_host_and_port_only() {
        assert_eq!(
            mask_url("https://hooks.slack.com/services/T0/B0/XYZ"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            mask_url("http://127.0.0.1:8080/hook?token=s3cret"),
            "http://127.0.0.1:8080/…"
        );
        assert_eq!(mask_url("https://example.com"), "https://example.com/…");
        assert_eq!(
            mask_url("https://example.com:443/x"),
            "https://example.com/…"
        );
        assert_eq!(mask_url("http://[::1]:9000/a/b"), "http://[::1]:9000/…");
        assert_eq!(mask_url("https://h.example/x#frag"), "https://h.example/…");
    }

    #[test]
    fn mask_url_hides_userinfo() {
        let masked = mask_url("https://user:pw@host.example/x");
        assert_eq!(masked, "https://host.example/…");
        assert!(!masked.contains("user") && !masked.contains("pw"));
    }

    #[test]
    fn mask_url_never_echoes_garbage() {
        for garbage in [
            "",
            "not a url",
            "s3cret-token",
            "mailto:someone@example.com",
            "https://",
            "://x/y",
            "http//oops/secret",
        ] {
            let masked = mask_url(garbage);
            assert_eq!(masked, "(invalid URL)", "{garbage:?}");
        }
    }

    fn notify(on: &[NotifyEvent]) -> Notify {
        Notify {
            webhook: "http://127.0.0.1:9/hook".to_string(),
            on: on.to_vec(),
        }
    }

    #[tokio::test]
    async fn wants_follows_on_and_always_takes_steps() {
        let client = webhook_client().expect("client");
        let all = Notifier::start(Some(&notify(&[])), client.clone(), |_| {});
        for event in [
            Event::Phase,
            Event::Breach,
            Event::Rollback,
            Event::Done,
            Event::Step,
        ] {
            assert!(all.wants(event), "{event:?}");
        }
        let some = Notifier::start(
            Some(&notify(&[NotifyEvent::Breach, NotifyEvent::Done])),
            client.clone(),
            |_| {},
        );
        assert!(some.wants(Event::Breach));
        assert!(some.wants(Event::Done));
        assert!(some.wants(Event::Step));
        assert!(!some.wants(Event::Phase));
        assert!(!some.wants(Event::Rollback));
        assert_eq!(some.send(Message::new(Event::Phase, "p", "t")), None);

        let off = Notifier::start(None, client, |_| {});
        assert!(!off.wants(Event::Step));
        assert_eq!(off.send(Message::new(Event::Step, "p", "t")), None);
    }

    #[test]
    fn retry_after_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "soon", "1s"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_http_date() {
        // Sun, 06 Nov 1994 08:49:37 GMT
        let date = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        let now = date - Duration::from_secs(30);
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(form, now),
                Some(Duration::from_secs(30)),
                "{form}"
            );
        }
        // A date in the past asks for no wait.
        let later = date + Duration::from_secs(5);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Sun, 31 Nov 1994 08:49:37 GMT", now),
            None
        );
    }

    #[test]
    fn backoff_doubles_within_jitter() {
        let base = Duration::from_secs(1);
        for (attempt, nominal) in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0)] {
            for _ in 0..50 {
                let wait = backoff(base, attempt).as_secs_f64();
                assert!(
                    (nominal * 0.8 - 1e-9..=nominal * 1.2 + 1e-9).contains(&wait),
                    "attempt {attempt}: {wait}"
                );
            }
        }
        // No overflow panic on absurd inputs.
        let _ = backoff(Duration::MAX, 40);
    }

    #[test]
    fn payload_text_is_one_escaped_line_with_figures() {
        let mut message = Message::new(
            Event::Breach,
            "checkout 2.4.0",
            "checkout 2.4.0: error rate\nbreached in <production> & more",
        );
        message.phase = Some("canary".into());
        message.environment = Some("production".into());
        message.figures = vec![
            ("error_rate".into(), "2.1 % > 1 %".into()),
            ("weight".into(), "30 %".into()),
        ];
        let payload = message.payload();
        assert_eq!(
            payload["text"],
            "checkout 2.4.0: error rate breached in &lt;production&gt; &amp; more — \
             error_rate: 2.1 % &gt; 1 %, weight: 30 %"
        );
        assert_eq!(payload["warroom"]["event"], "breach");
        assert_eq!(payload["warroom"]["phase"], "canary");
        assert_eq!(payload["warroom"]["operator"], serde_json::Value::Null);
        assert_eq!(payload["warroom"]["figures"]["error_rate"], "2.1 % > 1 %");
    }

    #[test]
    fn scrub_removes_every_secret_part() {
        let target = Target::new("https://u:pw@hooks.example/services/T0/B0/XYZ?token=abc");
        let text = target.scrub(
            "error for url (https://u:pw@hooks.example/services/T0/B0/XYZ?token=abc), \
             path /services/T0/B0/XYZ, query token=abc",
        );
        for secret in ["XYZ", "token=abc", "pw@"] {
            assert!(!text.contains(secret), "{text}");
        }
    }
}
