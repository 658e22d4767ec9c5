//! `pods/{name}/log`: plausible container logs so `kubectl logs` works against the simulator.
//! Reads pods only; it must not write to the store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::KubeSim;
use super::error::ApiError;
use super::resources;
use super::snapshot::image_tag;
use super::util::{name_of, namespace_of, now_rfc3339, str_at};

const HEARTBEAT: Duration = Duration::from_secs(5);

fn container<'a>(pod: &'a Value, wanted: Option<&str>) -> Result<&'a Value, ApiError> {
    let containers = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| str_at(c, "/name"))
        .collect();
    match wanted {
        Some(w) => containers
            .iter()
            .find(|c| str_at(c, "/name") == Some(w))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "container {w} is not valid for pod {}",
                    name_of(pod)
                ))
            }),
        None if containers.len() == 1 => containers
            .first()
            .ok_or_else(|| ApiError::BadRequest("pod has no containers".into())),
        None => Err(ApiError::BadRequest(format!(
            "a container name must be specified for pod {}, choose one of: [{}]",
            name_of(pod),
            names.join(" ")
        ))),
    }
}

/// The container's log so far, as the kubelet would return it, or the error the kubelet gives
/// for a container that has not started.
pub fn pod_log(
    sim: &KubeSim,
    pod: &Value,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let c = container(pod, q.get("container").map(String::as_str))?;
    let cname = str_at(c, "/name").unwrap_or_default().to_string();
    let status = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|s| str_at(s, "/name") == Some(cname.as_str()))
        });
    let Some(started) = status.and_then(|s| str_at(s, "/state/running/startedAt")) else {
        let reason = status
            .and_then(|s| str_at(s, "/state/waiting/reason"))
            .unwrap_or("ContainerCreating");
        return Err(ApiError::BadRequest(format!(
            "container \"{cname}\" in pod \"{}\" is waiting to start: {reason}",
            name_of(pod)
        )));
    };
    let version = str_at(c, "/image").map(image_tag).unwrap_or_default();
    let timestamps = q.get("timestamps").is_some_and(|v| v == "true" || v == "1");
    let stamp = move |ts: &str, msg: String| {
        if timestamps {
            format!("{ts} {msg}\n")
        } else {
            format!("{msg}\n")
        }
    };
    let mut lines = vec![
        stamp(
            started,
            format!("level=info msg=\"starting {cname}\" version={version}"),
        ),
        stamp(started, "level=info msg=\"listening\" addr=:8080".into()),
    ];
    if status.and_then(|s| s.get("ready")).and_then(Value::as_bool) == Some(true) {
        lines.push(stamp(
            started,
            "level=info msg=\"readiness probe passed\" path=/healthz".into(),
        ));
    }
    if let Some(n) = q.get("tailLines").and_then(|n| n.parse::<usize>().ok()) {
        let skip = lines.len().saturating_sub(n);
        lines.drain(..skip);
    }
    let follow = q.get("follow").is_some_and(|v| v == "true" || v == "1");
    if !follow {
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain")],
            lines.concat(),
        )
            .into_response());
    }
    // Following: the history, then a heartbeat line until the pod goes away or the client leaves.
    let (ns, name) = (namespace_of(pod).to_string(), name_of(pod).to_string());
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let sim = sim.clone();
    let shutdown = sim.shutdown_signal();
    tokio::spawn(async move {
        for l in lines {
            if tx.send(Bytes::from(l)).await.is_err() {
                return;
            }
        }
        let mut ticker = tokio::time::interval(HEARTBEAT);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.cancelled() => return,
                _ = tx.closed() => return,
            }
            if sim.store().get(&resources::PODS, &ns, &name).is_err() {
                return;
            }
            let msg = stamp(
                &now_rfc3339(),
                "level=info msg=\"heartbeat\" status=ok".into(),
            );
            if tx.send(Bytes::from(msg)).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain")],
        Body::from_stream(stream),
    )
        .into_response())
}
