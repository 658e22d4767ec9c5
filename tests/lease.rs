//! "One run at a time" end to end: `warroom::lease` against the simulated API server over
//! loopback HTTP, through the real kube client. Each test serves its own simulator.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Config};
use tokio_util::sync::CancellationToken;
use warroom::lease::{
    self, Holder, LEASE_DURATION, LeaseError, LeaseGuard, PLAN_ANNOTATION, RUN_ID_ANNOTATION, Taken,
};
use warroom::sim::kube::{DenyRule, KubeSim, serve_loopback};

const DEADLINE: Duration = Duration::from_secs(20);
const NS: &str = "shop";
const PLAN: &str = "checkout 2.4.0";
const NAME: &str = "warroom-checkout-2-4-0";

struct Harness {
    sim: KubeSim,
    client: Client,
    cancel: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Harness {
    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), NS)
    }

    async fn lease(&self) -> Lease {
        self.leases().get(NAME).await.expect("the lease is there")
    }

    async fn acquire(
        &self,
        holder: &Holder,
        now: SystemTime,
    ) -> Result<(LeaseGuard, Taken), LeaseError> {
        lease::acquire(self.client.clone(), NS, PLAN, holder, now).await
    }
}

/// A simulator with an empty namespace `shop`, and a client for it.
async fn start() -> Harness {
    let sim = KubeSim::new();
    let cancel = CancellationToken::new();
    let port = serve_loopback(sim.clone(), cancel.clone())
        .await
        .expect("serve")
        .port();
    let url = format!("http://127.0.0.1:{port}").parse().expect("url");
    let client = Client::try_from(Config::new(url)).expect("client");
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(NS.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace created");
    Harness {
        sim,
        client,
        cancel,
    }
}

fn alice() -> Holder {
    Holder {
        identity: "alice@host-1".into(),
        run_id: "run-a".into(),
    }
}

fn bob() -> Holder {
    Holder {
        identity: "bob@host-2".into(),
        run_id: "run-b".into(),
    }
}

/// 2025-06-01T10:02:30Z: a fixed clock, so messages can be compared whole.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_748_772_150)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn micro(t: SystemTime) -> MicroTime {
    MicroTime(jiff::Timestamp::try_from(t).expect("time in range"))
}

fn spec(lease: &Lease) -> LeaseSpec {
    lease.spec.clone().unwrap_or_default()
}

fn annotation<'a>(lease: &'a Lease, key: &str) -> Option<&'a str> {
    lease
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

#[tokio::test]
async fn a_fresh_namespace_gets_a_new_lease_with_holder_duration_and_annotations() {
    let h = start().await;
    let (guard, taken) = h.acquire(&alice(), t0()).await.expect("acquired");
    assert_eq!(taken, Taken::Fresh);
    assert_eq!((guard.namespace(), guard.name()), (NS, NAME));

    let stored = h.lease().await;
    let s = spec(&stored);
    assert_eq!(s.holder_identity.as_deref(), Some("alice@host-1"));
    assert_eq!(s.lease_duration_seconds, Some(15));
    assert_eq!(LEASE_DURATION, secs(15));
    assert_eq!(s.lease_transitions, Some(0));
    assert_eq!(s.acquire_time, Some(micro(t0())));
    assert_eq!(s.renew_time, Some(micro(t0())));
    assert_eq!(annotation(&stored, RUN_ID_ANNOTATION), Some("run-a"));
    assert_eq!(annotation(&stored, PLAN_ANNOTATION), Some(PLAN));
    assert_eq!(
        guard.lease().await.metadata.resource_version,
        stored.metadata.resource_version
    );
}

#[tokio::test]
async fn another_run_is_refused_while_the_lease_is_live_and_told_who_holds_it() {
    let h = start().await;
    h.acquire(&alice(), t0()).await.expect("alice acquires");
    let before = h.lease().await;

    // 15 s after the renewal the lease is still live (it expires strictly after).
    let err = h
        .acquire(&bob(), t0() + secs(15))
        .await
        .expect_err("bob is refused");
    assert!(matches!(err, LeaseError::Held { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "checkout 2.4.0 is being run by alice@host-1 since 10:02 UTC (lease shop/warroom-checkout-2-4-0)"
    );
    // Refusing writes nothing.
    assert_eq!(
        h.lease().await.metadata.resource_version,
        before.metadata.resource_version
    );
}

#[tokio::test]
async fn the_same_run_takes_its_own_lease_over_as_a_resume_once_it_is_no_longer_renewed() {
    let h = start().await;
    h.acquire(&alice(), t0()).await.expect("alice acquires");
    let resumed = Holder {
        identity: "alice@host-3".into(),
        run_id: "run-a".into(),
    };
    // 5 s later the lease is still live: the first process may still be running the plan.
    let err = h
        .acquire(&resumed, t0() + secs(5))
        .await
        .expect_err("a live lease of the same run is not taken");
    assert!(
        matches!(err, LeaseError::StillRunning { .. }),
        "{err}: {err:?}"
    );
    assert!(
        err.to_string().contains("still being run by alice@host-1"),
        "{err}"
    );
    // Once it has expired, the resume takes it over.
    let (_guard, taken) = h.acquire(&resumed, t0() + secs(20)).await.expect("resumed");
    assert_eq!(taken, Taken::Resumed);
    let s = spec(&h.lease().await);
    assert_eq!(s.holder_identity.as_deref(), Some("alice@host-3"));
    assert_eq!(s.acquire_time, Some(micro(t0())), "acquireTime is kept");
    assert_eq!(s.renew_time, Some(micro(t0() + secs(20))));
    assert_eq!(s.lease_transitions, Some(0));
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_transition_counted() {
    let h = start().await;
    h.acquire(&alice(), t0()).await.expect("alice acquires");
    let later = t0() + secs(20);
    let (_guard, taken) = h.acquire(&bob(), later).await.expect("bob takes over");
    assert_eq!(
        taken,
        Taken::Expired {
            previous: "alice@host-1".into()
        }
    );
    let stored = h.lease().await;
    let s = spec(&stored);
    assert_eq!(s.holder_identity.as_deref(), Some("bob@host-2"));
    assert_eq!(s.lease_transitions, Some(1));
    assert_eq!(s.acquire_time, Some(micro(later)));
    assert_eq!(s.renew_time, Some(micro(later)));
    assert_eq!(annotation(&stored, RUN_ID_ANNOTATION), Some("run-b"));
}

#[tokio::test]
async fn a_lease_someone_left_with_an_old_renewal_is_taken_over() {
    let h = start().await;
    // A lease as another tool (or a crashed run) left it: renewed an hour before now.
    let old = Lease {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some("carol@host-9".into()),
            lease_duration_seconds: Some(15),
            acquire_time: Some(micro(t0() - secs(7200))),
            renew_time: Some(micro(t0() - secs(3600))),
            lease_transitions: Some(4),
            ..LeaseSpec::default()
        }),
    };
    h.leases()
        .create(&PostParams::default(), &old)
        .await
        .expect("old lease created");
    let (_guard, taken) = h.acquire(&alice(), t0()).await.expect("taken over");
    assert_eq!(
        taken,
        Taken::Expired {
            previous: "carol@host-9".into()
        }
    );
    let s = spec(&h.lease().await);
    assert_eq!(s.lease_transitions, Some(5));
    assert_eq!(s.holder_identity.as_deref(), Some("alice@host-1"));
}

#[tokio::test]
async fn a_released_lease_keeps_its_object_and_the_next_run_takes_it_at_once() {
    let h = start().await;
    let (guard, _) = h.acquire(&alice(), t0()).await.expect("alice acquires");
    guard.release().await.expect("released");
    let released = h.lease().await;
    assert_eq!(spec(&released).holder_identity, None);

    // One second later, long before the lease would expire.
    let (_guard, taken) = h
        .acquire(&bob(), t0() + secs(1))
        .await
        .expect("bob acquires");
    assert_eq!(taken, Taken::Fresh);
    let s = spec(&h.lease().await);
    assert_eq!(s.holder_identity.as_deref(), Some("bob@host-2"));
    assert_eq!(s.lease_transitions, Some(1));
    assert_eq!(s.acquire_time, Some(micro(t0() + secs(1))));
}

#[tokio::test]
async fn renewing_after_another_run_took_over_says_the_lease_was_lost() {
    let h = start().await;
    let (alices, _) = h.acquire(&alice(), t0()).await.expect("alice acquires");
    alices.renew(t0() + secs(5)).await.expect("alice renews");
    assert_eq!(
        spec(&h.lease().await).renew_time,
        Some(micro(t0() + secs(5)))
    );

    h.acquire(&bob(), t0() + secs(30))
        .await
        .expect("bob takes the expired lease over");
    let err = alices
        .renew(t0() + secs(31))
        .await
        .expect_err("alice lost it");
    assert_eq!(
        err,
        LeaseError::Lost {
            by: "bob@host-2".into(),
            namespace: NS.into(),
            name: NAME.into(),
        }
    );
    assert_eq!(
        err.to_string(),
        "lease shop/warroom-checkout-2-4-0 was taken over by bob@host-2"
    );
    // Releasing what is no longer ours writes nothing.
    let bobs = h.lease().await;
    assert!(alices.release().await.expect_err("not ours").is_lost());
    assert_eq!(
        h.lease().await.metadata.resource_version,
        bobs.metadata.resource_version
    );
}

#[tokio::test]
async fn renewing_a_deleted_lease_says_so() {
    let h = start().await;
    let (guard, _) = h.acquire(&alice(), t0()).await.expect("acquired");
    h.leases()
        .delete(NAME, &DeleteParams::default())
        .await
        .expect("deleted");
    let err = guard.renew(t0() + secs(1)).await.expect_err("gone");
    assert!(matches!(err, LeaseError::Deleted { .. }), "{err:?}");
    assert!(err.is_lost());
}

#[tokio::test]
async fn two_runs_racing_for_one_lease_end_with_exactly_one_holder() {
    let h = start().await;
    // On a fresh namespace: both see no lease, both create, one gets 409 and reads again.
    let (alice, bob) = (alice(), bob());
    let (a, b) = tokio::join!(h.acquire(&alice, t0()), h.acquire(&bob, t0()));
    let winners = [a.is_ok(), b.is_ok()].iter().filter(|w| **w).count();
    assert_eq!(
        winners,
        1,
        "{:?} / {:?}",
        a.as_ref().err(),
        b.as_ref().err()
    );
    let loser = a.err().or(b.err()).expect("one lost");
    assert!(matches!(loser, LeaseError::Held { .. }), "{loser:?}");

    // Over an expired lease: both update with the same resourceVersion, one gets 409.
    let later = t0() + secs(60);
    let carol = Holder {
        identity: "carol@host-9".into(),
        run_id: "run-c".into(),
    };
    let dave = Holder {
        identity: "dave@host-7".into(),
        run_id: "run-d".into(),
    };
    let (c, d) = tokio::join!(h.acquire(&carol, later), h.acquire(&dave, later));
    let winners = [c.is_ok(), d.is_ok()].iter().filter(|w| **w).count();
    assert_eq!(
        winners,
        1,
        "{:?} / {:?}",
        c.as_ref().err(),
        d.as_ref().err()
    );
    let loser = c.err().or(d.err()).expect("one lost");
    assert!(matches!(loser, LeaseError::Held { .. }), "{loser:?}");
    assert_eq!(spec(&h.lease().await).lease_transitions, Some(1));
}

#[tokio::test]
async fn a_forbidden_create_names_the_lease_the_verb_and_the_code() {
    let h = start().await;
    let rule = h.sim.deny(DenyRule {
        verb: Some("create".into()),
        resource: Some("leases".into()),
        namespace: None,
    });
    let err = h
        .acquire(&alice(), t0())
        .await
        .expect_err("refused by RBAC");
    assert!(
        matches!(&err, LeaseError::Api { code: Some(403), verb, .. } if verb == "create"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("cannot create lease shop/warroom-checkout-2-4-0: 403 forbidden: "),
        "{text}"
    );
    assert!(text.contains("cannot create resource \"leases\""), "{text}");
    h.sim.allow(rule);
    h.acquire(&alice(), t0()).await.expect("allowed again");
}

#[tokio::test]
async fn the_renewal_task_keeps_the_lease_fresh_and_reports_losing_it() {
    let h = start().await;
    let (guard, _) = h
        .acquire(&alice(), SystemTime::now())
        .await
        .expect("acquired");
    let guard = Arc::new(guard);
    let first = spec(&h.lease().await).renew_time.expect("renewTime");
    let problems: Arc<Mutex<Vec<LeaseError>>> = Arc::default();
    let seen = problems.clone();
    let cancel = CancellationToken::new();
    let task = guard.clone().spawn_renewal(
        Duration::from_millis(100),
        move |e| seen.lock().unwrap_or_else(|p| p.into_inner()).push(e),
        cancel.clone(),
    );

    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let renewed = spec(&h.lease().await).renew_time.expect("renewTime");
        if renewed > first {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never renewed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Bob takes it over (his clock says it expired): the task reports the loss and stops.
    h.acquire(&bob(), SystemTime::now() + secs(60))
        .await
        .expect("bob takes over");
    wait_until_finished(&task, deadline, "the renewal task kept running").await;
    let problems = problems.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        matches!(&problems[0], LeaseError::Lost { by, .. } if by == "bob@host-2"),
        "{problems:?}"
    );
    assert_eq!(
        spec(&h.lease().await).holder_identity.as_deref(),
        Some("bob@host-2")
    );
    cancel.cancel();
}

#[tokio::test]
async fn the_renewal_task_reports_failures_keeps_trying_and_stops_once_released() {
    let h = start().await;
    let (guard, _) = h
        .acquire(&alice(), SystemTime::now())
        .await
        .expect("acquired");
    let guard = Arc::new(guard);
    let rule = h.sim.deny(DenyRule {
        verb: Some("update".into()),
        resource: Some("leases".into()),
        namespace: None,
    });
    let problems: Arc<Mutex<Vec<LeaseError>>> = Arc::default();
    let seen = problems.clone();
    let cancel = CancellationToken::new();
    let task = guard.clone().spawn_renewal(
        Duration::from_millis(100),
        move |e| seen.lock().unwrap_or_else(|p| p.into_inner()).push(e),
        cancel.clone(),
    );
    let count = || problems.lock().unwrap_or_else(|p| p.into_inner()).len();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while count() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failures reported"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!task.is_finished(), "a refused renewal is retried");
    let first = problems.lock().unwrap_or_else(|p| p.into_inner())[0].clone();
    assert!(
        matches!(&first, LeaseError::Api { code: Some(403), verb, .. } if verb == "renew"),
        "{first:?}"
    );

    // Once allowed again, renewals land.
    h.sim.allow(rule);
    let before = spec(&h.lease().await).renew_time.expect("renewTime");
    loop {
        if spec(&h.lease().await).renew_time.expect("renewTime") > before {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never renewed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Releasing ends the renewals quietly.
    let reported = count();
    guard.release().await.expect("released");
    wait_until_finished(&task, deadline, "the renewal task outlived the release").await;
    assert_eq!(
        count(),
        reported,
        "{:?}",
        problems.lock().unwrap_or_else(|p| p.into_inner())
    );
    assert_eq!(spec(&h.lease().await).holder_identity, None);
    cancel.cancel();
}

#[tokio::test]
async fn cancelling_the_renewal_task_stops_it_and_keeps_the_lease() {
    let h = start().await;
    let (guard, _) = h
        .acquire(&alice(), SystemTime::now())
        .await
        .expect("acquired");
    let problems: Arc<Mutex<Vec<LeaseError>>> = Arc::default();
    let seen = problems.clone();
    let cancel = CancellationToken::new();
    let task = Arc::new(guard).spawn_renewal(
        Duration::from_millis(100),
        move |e| seen.lock().unwrap_or_else(|p| p.into_inner()).push(e),
        cancel.clone(),
    );
    cancel.cancel();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    wait_until_finished(&task, deadline, "cancel ignored").await;
    task.await.expect("the renewal task did not panic");
    assert!(
        problems
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty(),
        "{problems:?}"
    );
    // Cancelling is not releasing: the lease stays held until it expires or is released.
    assert_eq!(
        spec(&h.lease().await).holder_identity.as_deref(),
        Some("alice@host-1")
    );
}

async fn wait_until_finished(
    task: &tokio::task::JoinHandle<()>,
    deadline: tokio::time::Instant,
    what: &str,
) {
    while !task.is_finished() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
