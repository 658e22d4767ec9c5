//! The Prometheus client as users deploy Prometheus: behind HTTPS with a private CA, basic auth
//! or a bearer token, and a tenant header (Mimir, Thanos). The simulated Prometheus sits behind a
//! small TLS front that checks credentials the way an auth proxy does; everything goes over real
//! sockets through the same reqwest client the console uses.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_util::sync::CancellationToken;

use warroom::health::Health;
use warroom::metrics::prometheus::{PromClient, PromConfig, PromError};
use warroom::metrics::{MetricsEvent, sampler};
use warroom::plan::Environment;
use warroom::sim::server::Simulator;

const DEADLINE: Duration = Duration::from_secs(30);
const QUERY: &str = r#"sum(rate(http_requests_total{namespace="shop",service="checkout"}[30s]))"#;

async fn start_sim(dir: &tempfile::TempDir) -> Simulator {
    common::start_demo_sim(dir.path()).await.0
}

/// An HTTPS front for `upstream` with a certificate from a fresh CA. A request lacking any of
/// `required` (lower-case header name, exact value) gets `401`; the rest are passed through.
struct Front {
    url: String,
    ca_pem: String,
}

async fn tls_front(upstream: &str, required: Vec<(String, String)>) -> Front {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .expect("TLS config");
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let upstream: SocketAddr = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("upstream address");
    let required = Arc::new(required);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let required = required.clone();
            tokio::spawn(async move {
                // A failed handshake (a client that does not trust the CA) just ends here.
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = pass_through(tls, upstream, &required).await;
                }
            });
        }
    });
    Front {
        url: format!("https://127.0.0.1:{port}"),
        ca_pem: ca.pem(),
    }
}

/// One request per connection: checks the head, then forwards it and pipes both ways.
async fn pass_through(
    tls: tokio_rustls::server::TlsStream<TcpStream>,
    upstream: SocketAddr,
    required: &[(String, String)],
) -> std::io::Result<()> {
    let mut reader = BufReader::new(tls);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let header = |name: &str| {
        head.iter().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let allowed = required
        .iter()
        .all(|(name, value)| header(name).as_deref() == Some(value.as_str()));
    let mut tls = reader;
    if !allowed {
        tls.write_all(
            b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await?;
        return tls.shutdown().await;
    }
    let mut out = TcpStream::connect(upstream).await?;
    for line in &head {
        let (name, _) = line.split_once(':').unwrap_or_default();
        if !name.trim().eq_ignore_ascii_case("connection") && line != "\r\n" {
            out.write_all(line.as_bytes()).await?;
        }
    }
    out.write_all(b"Connection: close\r\n\r\n").await?;
    let length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    tls.read_exact(&mut body).await?;
    out.write_all(&body).await?;
    let mut answer = Vec::new();
    out.read_to_end(&mut answer).await?;
    tls.write_all(&answer).await?;
    tls.shutdown().await
}

fn environment(yaml: &str) -> Environment {
    serde_saphyr::from_str(yaml).expect("environment")
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write");
    path.display().to_string()
}

/// Queries until the simulator's traffic shows in the answer (it has just started).
async fn first_number(client: &PromClient) -> f64 {
    let deadline = Instant::now() + DEADLINE;
    loop {
        match client.query_scalar(QUERY, None).await {
            Ok(Some(v)) if v > 0.0 => return v,
            Ok(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            other => panic!("no number before the deadline: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_ca_basic_auth_and_tenant_header_reach_prometheus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start_sim(&dir).await;
    // "alice:s3cret" in base64.
    let front = tls_front(
        &sim.prometheus,
        vec![
            ("authorization".into(), "Basic YWxpY2U6czNjcmV0".into()),
            ("x-scope-orgid".into(), "shop".into()),
        ],
    )
    .await;
    let ca = write(&dir, "ca.pem", &front.ca_pem);
    let basic = write(&dir, "basic", "alice:s3cret\n");
    let env = environment(&format!(
        "namespace: shop\nca_file: {ca}\nbasic_auth_file: {basic}\nheaders: {{X-Scope-OrgID: shop}}\n"
    ));
    let config =
        PromConfig::for_environment(&front.url, &env, Duration::from_secs(5)).expect("config");
    let client = PromClient::new(config).expect("client");
    assert!(first_number(&client).await > 0.0);

    // Range queries go the same way: one point per step with data, oldest first. The simulator
    // has just started, so wait until two steps have data.
    let deadline = Instant::now() + DEADLINE;
    let series = loop {
        let now = SystemTime::now();
        let series = client
            .query_range(
                QUERY,
                now - Duration::from_secs(10),
                now,
                Duration::from_secs(1),
            )
            .await
            .expect("range query");
        assert_eq!(series.len(), 1, "{series:?}");
        if series[0].points.len() >= 2 {
            break series;
        }
        assert!(Instant::now() < deadline, "one point only: {series:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let times: Vec<SystemTime> = series[0].points.iter().map(|(t, _)| *t).collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");

    // A wrong password is refused, and said so.
    let wrong = write(&dir, "wrong", "alice:guess\n");
    let env = environment(&format!(
        "namespace: shop\nca_file: {ca}\nbasic_auth_file: {wrong}\nheaders: {{X-Scope-OrgID: shop}}\n"
    ));
    let client = PromClient::new(
        PromConfig::for_environment(&front.url, &env, Duration::from_secs(5)).expect("config"),
    )
    .expect("client");
    let err = client.query_scalar(QUERY, None).await.expect_err("refused");
    assert_eq!(err, PromError::Forbidden { status: 401 });
    assert!(
        err.to_string().contains("check the token or headers"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_token_file_is_sent_and_an_untrusted_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start_sim(&dir).await;
    let front = tls_front(
        &sim.prometheus,
        vec![("authorization".into(), "Bearer t0ken".into())],
    )
    .await;
    let ca = write(&dir, "ca.pem", &front.ca_pem);
    let token = write(&dir, "token", "t0ken\n");
    let env = environment(&format!(
        "namespace: shop\nca_file: {ca}\nbearer_token_file: {token}\n"
    ));
    let client = PromClient::new(
        PromConfig::for_environment(&front.url, &env, Duration::from_secs(5)).expect("config"),
    )
    .expect("client");
    assert!(first_number(&client).await > 0.0);

    // Without the CA file the certificate is not trusted: unreachable, and the reason shows.
    let env = environment(&format!("namespace: shop\nbearer_token_file: {token}\n"));
    let client = PromClient::new(
        PromConfig::for_environment(&front.url, &env, Duration::from_secs(5)).expect("config"),
    )
    .expect("client");
    let err = client
        .query_scalar(QUERY, None)
        .await
        .expect_err("untrusted");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_unreachable_and_sends_no_points() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    // A port nobody listens on: bind, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let base = format!("http://127.0.0.1:{port}");
    let client = PromClient::new(PromConfig::new(&base, Duration::from_secs(2))).expect("client");
    let err = client.query_scalar(QUERY, None).await.expect_err("refused");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains(&base), "{err}");

    let probes = common::demo_probes();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    tokio::spawn(sampler::run(
        client,
        probes,
        Duration::from_millis(100),
        move |e| {
            let _ = tx.send(e);
        },
        cancel.clone(),
    ));
    // The round is reported as unanswered (analysis counts it as missing data) with no points,
    // so the last good data stays on screen; then the source is marked unreachable.
    let event = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("an event before the deadline")
        .expect("sampler running");
    match event {
        MetricsEvent::Unanswered { error, .. } => assert!(error.contains(&base), "{error}"),
        other => panic!("expected an unanswered round first, got {other:?}"),
    }
    let event = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .expect("an event before the deadline")
        .expect("sampler running");
    match event {
        MetricsEvent::Health(Health::Degraded { error, .. }) => {
            assert!(error.contains("unreachable"), "{error}")
        }
        other => panic!("expected the source marked unreachable, got {other:?}"),
    }
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_prometheus_times_out_as_unreachable_and_recovers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sim = start_sim(&dir).await;
    let client = PromClient::new(PromConfig::new(&sim.prometheus, Duration::from_millis(300)))
        .expect("client");
    assert!(first_number(&client).await > 0.0);
    sim.prom_faults.set_delay(Duration::from_secs(2));
    let err = client
        .query_scalar(QUERY, None)
        .await
        .expect_err("too slow");
    assert!(err.is_unreachable(), "{err:?}");
    assert!(err.to_string().contains("timed out"), "{err}");
    sim.prom_faults.set_delay(Duration::ZERO);
    assert!(first_number(&client).await > 0.0);
}
