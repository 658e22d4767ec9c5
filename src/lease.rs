//! One run at a time: a `coordination.k8s.io/v1` Lease per plan and environment, in the
//! environment's namespace, taken before a run acts and renewed while it runs. Two runs of the
//! same plan would fight over the same objects; the API server's optimistic concurrency
//! (resourceVersion) decides which of them gets the lease. Talks to the API only; what a run
//! does when it cannot get or keep the lease is the caller's business.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio_util::sync::CancellationToken;

/// How long a lease stays live without a renewal. Short, so a run that died (laptop closed,
/// process killed) blocks the next one for seconds, not minutes.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

/// Annotation naming the run that holds the lease (its journal's run id): a resumed run
/// recognises its own lease by it, even from another host.
pub const RUN_ID_ANNOTATION: &str = "warroom.dev/run-id";

/// Annotation naming the plan, for whoever finds the lease with kubectl.
pub const PLAN_ANNOTATION: &str = "warroom.dev/plan";

/// Kubernetes names (RFC 1123 labels) are at most this long.
const MAX_NAME: usize = 63;

/// How many times `acquire` reads and writes again when another client wrote in between.
const ATTEMPTS: usize = 3;

/// Who holds a lease: the person and host (`alice@host-1`) and the id of the run (its
/// journal's run id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub identity: String,
    pub run_id: String,
}

/// How a lease was got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Nobody held it: there was no lease, or its holder had released it.
    Fresh,
    /// Another run's lease had expired (that run stopped renewing) and was taken over.
    Expired { previous: String },
    /// The lease was already this run's (the same run id): a resumed run took its own lease over.
    Resumed,
}

/// Why a lease could not be got or kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Another run holds a live lease. `since` is when it took it, `HH:MM UTC`.
    #[error("{plan} is being run by {holder} since {since} (lease {namespace}/{name})")]
    Held {
        plan: String,
        holder: String,
        since: String,
        namespace: String,
        name: String,
    },
    /// Someone else holds the lease this run held: the run must stop acting.
    #[error("lease {namespace}/{name} {}", lost_how(.by))]
    Lost {
        /// The new holder's identity; empty when the lease was released (its holder cleared).
        by: String,
        namespace: String,
        name: String,
    },
    /// The lease this run held was deleted: the run must stop acting, since another run may
    /// create it afresh at any moment.
    /// This run's own lease, still renewed: the process it belongs to may be alive.
    #[error(
        "{plan} is still being run by {holder} (lease {namespace}/{name}, renewed within its {seconds} s): is that process still running?"
    )]
    StillRunning {
        plan: String,
        holder: String,
        seconds: i32,
        namespace: String,
        name: String,
        /// The Lease object's uid: a run whose environments share a namespace of one cluster
        /// holds that one Lease for all of them.
        uid: Option<String>,
    },
    #[error("lease {namespace}/{name} was deleted while this run held it")]
    Deleted { namespace: String, name: String },
    /// The API server failed or refused a request. `code` is the HTTP status, when there was
    /// an answer at all; `message` says what went wrong, starting with the code.
    #[error("cannot {verb} lease {namespace}/{name}: {message}")]
    Api {
        verb: String,
        namespace: String,
        name: String,
        code: Option<u16>,
        message: String,
    },
    /// The system clock reads a time a Lease cannot carry (before year -9999 or after 9999).
    #[error("cannot {verb} lease {namespace}/{name}: the system clock reads an impossible time")]
    Clock {
        verb: String,
        namespace: String,
        name: String,
    },
}

fn lost_how(by: &str) -> String {
    if by.is_empty() {
        "was released".to_string()
    } else {
        format!("was taken over by {by}")
    }
}

impl LeaseError {
    /// Whether the lease is gone for good (taken over or deleted): renewing again cannot help,
    /// and the run must stop acting.
    pub fn is_lost(&self) -> bool {
        matches!(self, LeaseError::Lost { .. } | LeaseError::Deleted { .. })
    }
}

/// The lease's name for a plan: `warroom-` and the plan name made a Kubernetes name
/// (lowercase; every run of characters other than `a-z0-9` one `-`; no `-` at either end),
/// cut to 63 characters. `checkout 2.4.0` → `warroom-checkout-2-4-0`.
pub fn lease_name(plan_name: &str) -> String {
    let mut name = format!("warroom-{}", crate::journal::name_part(plan_name));
    // Only ASCII was pushed, so cutting at a byte count cuts at a character boundary.
    name.truncate(MAX_NAME);
    name.trim_end_matches('-').to_string()
}

/// `operator@hostname`, the lease holder's identity a person recognises in `kubectl get
/// leases` and in the refusal another run prints. The hostname comes from gethostname(2) or
/// /etc/hostname; `unknown-host` when neither gives one.
pub fn default_identity(operator: &str) -> String {
    format!("{operator}@{}", hostname())
}

/// This host's name (the journal's `host`, a lease holder's `@host`); `unknown-host` when
/// neither gethostname(2) nor /etc/hostname gives one.
pub fn hostname() -> String {
    hostname_of_system().unwrap_or_else(|| "unknown-host".into())
}

fn hostname_of_system() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname(2) writes at most `buf.len()` bytes into the buffer we own and pass
    // with its length; it keeps no pointer to it.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let from_call = (rc == 0)
        .then(|| {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            String::from_utf8_lossy(&buf[..end]).trim().to_string()
        })
        .filter(|h| !h.is_empty());
    from_call.or_else(|| {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
    })
}

/// Where a lease lives, for wording errors.
#[derive(Debug, Clone)]
struct Address {
    namespace: String,
    name: String,
}

impl Address {
    fn api_error(&self, verb: &str, err: &kube::Error) -> LeaseError {
        let (code, message) = match err {
            kube::Error::Api(status) => {
                let mut message = status.code.to_string();
                if !status.reason.is_empty() {
                    message.push(' ');
                    message.push_str(&status.reason.to_lowercase());
                }
                if !status.message.is_empty() {
                    message.push_str(": ");
                    message.push_str(&status.message);
                }
                (Some(status.code), message)
            }
            other => (
                None,
                format!(
                    "API server unreachable ({})",
                    crate::health::root_cause(other)
                ),
            ),
        };
        LeaseError::Api {
            verb: verb.to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            code,
            message,
        }
    }

    fn clock_error(&self, verb: &str) -> LeaseError {
        LeaseError::Clock {
            verb: verb.to_string(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    fn deleted(&self) -> LeaseError {
        LeaseError::Deleted {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }
}

fn status_code(err: &kube::Error) -> Option<u16> {
    match err {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn micro_time(now: SystemTime) -> Option<MicroTime> {
    Timestamp::try_from(now).ok().map(MicroTime)
}

fn run_id_of(lease: &Lease) -> Option<&str> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RUN_ID_ANNOTATION))
        .map(String::as_str)
}

fn holder_of(lease: &Lease) -> &str {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .unwrap_or_default()
}

/// Whether the holder stopped renewing more than the lease's duration before `now`. A lease
/// that never says when it was renewed counts as expired: nothing shows its holder alive.
fn expired(lease: &Lease, now: Timestamp) -> bool {
    let Some(spec) = lease.spec.as_ref() else {
        return true;
    };
    let Some(renewed) = spec.renew_time.as_ref().or(spec.acquire_time.as_ref()) else {
        return true;
    };
    let duration = spec
        .lease_duration_seconds
        .map_or(LEASE_DURATION.as_secs() as i64, i64::from);
    renewed
        .0
        .checked_add(jiff::SignedDuration::from_secs(duration))
        .is_ok_and(|until| until < now)
}

/// `HH:MM UTC` of when the holder took the lease.
fn since(lease: &Lease) -> String {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.acquire_time.as_ref().or(s.renew_time.as_ref()))
        .map_or_else(
            || "an unknown time".to_string(),
            |t| t.0.strftime("%H:%M UTC").to_string(),
        )
}

/// Writes `holder` into `lease`'s annotations and spec as its new holder, renewed at `now`.
/// The annotation naming the process holding the lease: a resume by the same operator on the
/// same host is another process, and the first must find out it lost the lease.
pub const PROCESS_ANNOTATION: &str = "warroom.dev/process";

/// This process's id for [`PROCESS_ANNOTATION`]: the pid and a random part.
fn process_nonce() -> &'static str {
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NONCE.get_or_init(|| format!("{}-{:08x}", std::process::id(), rand::random::<u32>()))
}

fn hold(lease: &mut Lease, plan_name: &str, holder: &Holder, now: &MicroTime) {
    let annotations = lease.metadata.annotations.get_or_insert_default();
    annotations.insert(RUN_ID_ANNOTATION.into(), holder.run_id.clone());
    annotations.insert(PROCESS_ANNOTATION.into(), process_nonce().to_string());
    annotations.insert(PLAN_ANNOTATION.into(), plan_name.to_string());
    let spec = lease.spec.get_or_insert_default();
    spec.holder_identity = Some(holder.identity.clone());
    spec.lease_duration_seconds = Some(LEASE_DURATION.as_secs() as i32);
    spec.renew_time = Some(now.clone());
}

/// Takes the lease of `plan_name` in `namespace` for `holder`, judging expiry at `now`:
/// creates it when there is none; takes it over when it is this run's own (a resume), was
/// released, or expired; refuses with [`LeaseError::Held`] when another run holds it live.
/// Every write carries the resourceVersion it read, so of two runs racing for one lease
/// exactly one wins; the loser reads again and is refused.
pub async fn acquire(
    client: kube::Client,
    namespace: &str,
    plan_name: &str,
    holder: &Holder,
    now: SystemTime,
) -> Result<(LeaseGuard, Taken), LeaseError> {
    let at = Address {
        namespace: namespace.to_string(),
        name: lease_name(plan_name),
    };
    let api: Api<Lease> = Api::namespaced(client, namespace);
    let now_ts = Timestamp::try_from(now).map_err(|_| at.clock_error("acquire"))?;
    let now_micro = MicroTime(now_ts);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let current = api
            .get_opt(&at.name)
            .await
            .map_err(|e| at.api_error("get", &e))?;
        let (verb, write, taken) = match current {
            None => {
                let mut lease = Lease {
                    metadata: ObjectMeta {
                        name: Some(at.name.clone()),
                        namespace: Some(at.namespace.clone()),
                        annotations: Some(BTreeMap::new()),
                        ..ObjectMeta::default()
                    },
                    spec: Some(LeaseSpec {
                        acquire_time: Some(now_micro.clone()),
                        lease_transitions: Some(0),
                        ..LeaseSpec::default()
                    }),
                };
                hold(&mut lease, plan_name, holder, &now_micro);
                (
                    "create",
                    api.create(&PostParams::default(), &lease).await,
                    Taken::Fresh,
                )
            }
            Some(mut lease) => {
                let ours = run_id_of(&lease) == Some(holder.run_id.as_str());
                let free = holder_of(&lease).is_empty() || expired(&lease, now_ts);
                let taken = if ours && free {
                    Taken::Resumed
                } else if ours {
                    // A resume must not drive the plan alongside a process that still renews
                    // it; a killed one's lease expires within its duration.
                    return Err(LeaseError::StillRunning {
                        plan: plan_name.to_string(),
                        holder: holder_of(&lease).to_string(),
                        seconds: lease
                            .spec
                            .as_ref()
                            .and_then(|s| s.lease_duration_seconds)
                            .unwrap_or(0),
                        namespace: at.namespace.clone(),
                        name: at.name.clone(),
                        uid: lease.metadata.uid.clone(),
                    });
                } else if holder_of(&lease).is_empty() {
                    Taken::Fresh
                } else if expired(&lease, now_ts) {
                    Taken::Expired {
                        previous: holder_of(&lease).to_string(),
                    }
                } else {
                    return Err(LeaseError::Held {
                        plan: plan_name.to_string(),
                        holder: holder_of(&lease).to_string(),
                        since: since(&lease),
                        namespace: at.namespace.clone(),
                        name: at.name.clone(),
                    });
                };
                let spec = lease.spec.get_or_insert_default();
                if taken == Taken::Resumed {
                    // The run goes on: it has held the lease since it first took it.
                    spec.acquire_time.get_or_insert_with(|| now_micro.clone());
                } else {
                    spec.acquire_time = Some(now_micro.clone());
                    spec.lease_transitions =
                        Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
                }
                hold(&mut lease, plan_name, holder, &now_micro);
                let written = api.replace(&at.name, &PostParams::default(), &lease).await;
                ("update", written, taken)
            }
        };
        match write {
            Ok(stored) => {
                let guard = LeaseGuard {
                    api,
                    at,
                    plan_name: plan_name.to_string(),
                    holder: holder.clone(),
                    last: tokio::sync::Mutex::new(stored),
                    released: AtomicBool::new(false),
                };
                return Ok((guard, taken));
            }
            // Another client created or wrote the lease between our read and our write: read
            // it again and judge afresh (it is most likely held now).
            Err(e) if status_code(&e) == Some(409) && attempt < ATTEMPTS => {}
            Err(e) => return Err(at.api_error(verb, &e)),
        }
    }
}

/// A lease this run holds. Renew it more often than [`LEASE_DURATION`] (see
/// [`LeaseGuard::spawn_renewal`]) and release it when the run ends.
#[derive(Debug)]
pub struct LeaseGuard {
    api: Api<Lease>,
    at: Address,
    plan_name: String,
    holder: Holder,
    /// The lease as last written or read: the next write carries its resourceVersion. The lock
    /// also keeps a renewal and a release from racing each other into a conflict.
    last: tokio::sync::Mutex<Lease>,
    /// Set once [`LeaseGuard::release`] succeeded: the renewal task then stops quietly.
    released: AtomicBool,
}

impl LeaseGuard {
    pub fn name(&self) -> &str {
        &self.at.name
    }

    pub fn namespace(&self) -> &str {
        &self.at.namespace
    }

    pub fn holder(&self) -> &Holder {
        &self.holder
    }

    /// The lease as this run last wrote or read it.
    pub async fn lease(&self) -> Lease {
        self.last.lock().await.clone()
    }

    /// Whether `lease` is still this run's, from this process (same run id and identity).
    fn is_ours(&self, lease: &Lease) -> bool {
        let process = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PROCESS_ANNOTATION))
            .map(String::as_str);
        run_id_of(lease) == Some(self.holder.run_id.as_str())
            && holder_of(lease) == self.holder.identity
            && process.is_none_or(|p| p == process_nonce())
    }

    fn lost(&self, lease: &Lease) -> LeaseError {
        LeaseError::Lost {
            by: holder_of(lease).to_string(),
            namespace: self.at.namespace.clone(),
            name: self.at.name.clone(),
        }
    }

    /// Writes `change` into the lease if it is still ours. A conflict means someone wrote it
    /// since we last saw it: read it again, and write once more only if it is still ours.
    async fn update_ours(&self, verb: &str, change: impl Fn(&mut Lease)) -> Result<(), LeaseError> {
        let mut last = self.last.lock().await;
        let mut base = last.clone();
        // Once lost, always lost: the guard keeps the lease as it found it taken, and never
        // writes over the new holder's copy. Getting the lease back takes a new `acquire`.
        if !self.is_ours(&base) {
            return Err(self.lost(&base));
        }
        for attempt in 0..2 {
            let mut next = base.clone();
            change(&mut next);
            match self
                .api
                .replace(&self.at.name, &PostParams::default(), &next)
                .await
            {
                Ok(stored) => {
                    *last = stored;
                    return Ok(());
                }
                Err(e) if status_code(&e) == Some(404) => return Err(self.at.deleted()),
                Err(e) if status_code(&e) == Some(409) && attempt == 0 => {
                    let fresh = match self.api.get_opt(&self.at.name).await {
                        Ok(Some(fresh)) => fresh,
                        Ok(None) => return Err(self.at.deleted()),
                        Err(e) => return Err(self.at.api_error("get", &e)),
                    };
                    if !self.is_ours(&fresh) {
                        let lost = self.lost(&fresh);
                        *last = fresh;
                        return Err(lost);
                    }
                    base = fresh;
                }
                Err(e) => return Err(self.at.api_error(verb, &e)),
            }
        }
        // Two conflicts in a row while the lease stayed ours: someone keeps writing it.
        Err(LeaseError::Api {
            verb: verb.to_string(),
            namespace: self.at.namespace.clone(),
            name: self.at.name.clone(),
            code: Some(409),
            message: "409 conflict: the lease keeps changing under this run".into(),
        })
    }

    /// Marks the lease renewed at `now`. [`LeaseError::Lost`] when another run (or this run
    /// from elsewhere) has taken it over, [`LeaseError::Deleted`] when it is gone.
    pub async fn renew(&self, now: SystemTime) -> Result<(), LeaseError> {
        let now = micro_time(now).ok_or_else(|| self.at.clock_error("renew"))?;
        self.update_ours("renew", |lease| {
            hold(lease, &self.plan_name, &self.holder, &now);
        })
        .await
    }

    /// Renews every `every` (use [`LEASE_DURATION`] / 3) until `cancel` or until the lease is
    /// released. A failed renewal (or one unanswered after `every`, at least 1 s) is reported
    /// through `on_problem` and tried again sooner; losing the lease is reported and ends the
    /// renewals, since renewing cannot bring it back. Never panics.
    pub fn spawn_renewal(
        self: Arc<Self>,
        every: Duration,
        on_problem: impl Fn(LeaseError) + Send + 'static,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let every = every.max(Duration::from_millis(100));
        let retry = (every / 4).max(Duration::from_millis(100));
        let answer_within = every.max(Duration::from_secs(1));
        tokio::spawn(async move {
            let mut wait = every;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
                if self.released.load(Ordering::SeqCst) {
                    return;
                }
                // A renewal that hangs would let the lease expire unreported: give up on it
                // after a while and say so. If it landed after all, the next one meets a
                // conflict, finds the lease still ours and writes again.
                let renewed = tokio::select! {
                    () = cancel.cancelled() => return,
                    r = tokio::time::timeout(answer_within, self.renew(SystemTime::now())) => {
                        r.unwrap_or_else(|_| Err(LeaseError::Api {
                            verb: "renew".into(),
                            namespace: self.at.namespace.clone(),
                            name: self.at.name.clone(),
                            code: None,
                            message: format!(
                                "the API server did not answer within {} ms",
                                answer_within.as_millis()
                            ),
                        }))
                    }
                };
                match renewed {
                    Ok(()) => wait = every,
                    // Released while this renewal was on its way: nothing went wrong.
                    Err(_) if self.released.load(Ordering::SeqCst) => return,
                    Err(e) if e.is_lost() => {
                        on_problem(e);
                        return;
                    }
                    Err(e) => {
                        on_problem(e);
                        wait = retry;
                    }
                }
            }
        })
    }

    /// Gives the lease up: clears the holder and keeps the object (as client-go's
    /// ReleaseOnCancel does), so the next run takes it at once instead of waiting for it to
    /// expire. Writes nothing when the lease is no longer ours and says so
    /// ([`LeaseError::Lost`], [`LeaseError::Deleted`]).
    pub async fn release(&self) -> Result<(), LeaseError> {
        self.update_ours("release", |lease| {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
            }
        })
        .await?;
        self.released.store(true, Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_kubernetes_names_made_from_the_plan_name() {
        assert_eq!(lease_name("checkout 2.4.0"), "warroom-checkout-2-4-0");
        assert_eq!(lease_name("Checkout"), "warroom-checkout");
        assert_eq!(
            lease_name("  --Shop / Checkout!! "),
            "warroom-shop-checkout"
        );
        assert_eq!(lease_name("a__b..c"), "warroom-a-b-c");
        assert_eq!(lease_name("Zürich café"), "warroom-z-rich-caf");
        assert_eq!(lease_name("!!!"), "warroom");
        assert_eq!(lease_name(""), "warroom");
        let long = lease_name(&"x".repeat(100));
        assert_eq!(long.len(), 63);
        assert_eq!(long, format!("warroom-{}", "x".repeat(55)));
        // Cut at 63 lands on a dash: the dash goes too.
        let cut = lease_name(&format!("{} tail", "y".repeat(54)));
        assert_eq!(cut, format!("warroom-{}", "y".repeat(54)));
        assert!(!cut.ends_with('-'));
    }

    #[test]
    fn the_default_identity_names_the_operator_and_a_host() {
        let id = default_identity("alice");
        let host = id.strip_prefix("alice@").unwrap_or_default();
        assert!(!host.is_empty(), "{id}");
    }

    #[test]
    fn errors_name_the_lease_and_say_what_happened() {
        let held = LeaseError::Held {
            plan: "checkout 2.4.0".into(),
            holder: "bob@host-2".into(),
            since: "10:02 UTC".into(),
            namespace: "shop".into(),
            name: "warroom-checkout-2-4-0".into(),
        };
        assert_eq!(
            held.to_string(),
            "checkout 2.4.0 is being run by bob@host-2 since 10:02 UTC (lease shop/warroom-checkout-2-4-0)"
        );
        let lost = LeaseError::Lost {
            by: "bob@host-2".into(),
            namespace: "shop".into(),
            name: "warroom-x".into(),
        };
        assert_eq!(
            lost.to_string(),
            "lease shop/warroom-x was taken over by bob@host-2"
        );
        assert!(lost.is_lost());
        let forbidden = Address {
            namespace: "shop".into(),
            name: "warroom-x".into(),
        }
        .api_error(
            "create",
            &kube::Error::Api(
                kube::core::Status::failure("leases.coordination.k8s.io is forbidden", "Forbidden")
                    .with_code(403)
                    .boxed(),
            ),
        );
        assert_eq!(
            forbidden.to_string(),
            "cannot create lease shop/warroom-x: 403 forbidden: leases.coordination.k8s.io is forbidden"
        );
        assert!(!forbidden.is_lost());
    }

    fn lease_renewed(renew: &str, duration: Option<i32>) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some("bob@host-2".into()),
                renew_time: renew.parse().ok().map(MicroTime),
                acquire_time: "2025-06-01T10:02:30Z".parse().ok().map(MicroTime),
                lease_duration_seconds: duration,
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn a_lease_expires_its_duration_after_its_last_renewal() {
        let at = |s: &str| s.parse::<Timestamp>().unwrap_or(Timestamp::UNIX_EPOCH);
        let lease = lease_renewed("2025-06-01T10:05:00Z", Some(15));
        assert!(!expired(&lease, at("2025-06-01T10:05:15Z")));
        assert!(expired(&lease, at("2025-06-01T10:05:15.001Z")));
        // Without a duration the lease counts as ours would: 15 s.
        let no_duration = lease_renewed("2025-06-01T10:05:00Z", None);
        assert!(!expired(&no_duration, at("2025-06-01T10:05:10Z")));
        assert!(expired(&no_duration, at("2025-06-01T10:05:20Z")));
        assert!(expired(&Lease::default(), at("2025-06-01T10:05:20Z")));
        assert_eq!(since(&lease), "10:02 UTC");
        assert_eq!(since(&Lease::default()), "an unknown time");
    }
}
