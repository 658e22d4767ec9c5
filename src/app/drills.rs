//! The demo's drills: faults switched on in the embedded simulator (`POST {kubernetes}/sim/faults`)
//! and the list of those active, for the header. Only ever the simulator's endpoint.

use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::UnboundedSender;
use tokio_util::sync::CancellationToken;

use super::action::Action;
use super::modal::ActiveDrill;

/// How long one request to the simulator may take.
const TIMEOUT: Duration = Duration::from_secs(5);

/// How often the active faults are listed again (they end by themselves).
const POLL: Duration = Duration::from_secs(2);

fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .map_err(|e| format!("HTTP client: {e}"))
}

/// Switches a fault on (`body`) or every fault off (`None`), then lists those active: `None`
/// when it was done but the list could not be read.
pub async fn send(
    endpoint: &str,
    body: Option<&serde_json::Value>,
) -> Result<Option<Vec<ActiveDrill>>, String> {
    let client = client()?;
    let request = match body {
        Some(body) => client.post(endpoint).json(body),
        None => client.delete(endpoint),
    };
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(String::from))
            .unwrap_or(text);
        return Err(format!("the simulator answered {status}: {message}"));
    }
    Ok(list(&client, endpoint).await.ok())
}

/// The simulator's active faults.
async fn list(client: &reqwest::Client, endpoint: &str) -> Result<Vec<ActiveDrill>, String> {
    let response = client
        .get(endpoint)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("listing faults: {}", response.status()));
    }
    let value: serde_json::Value = response.json().await.map_err(|e| e.to_string())?;
    Ok(parse(&value, SystemTime::now()))
}

/// `{"faults":[{"id":…,"kind":…,"remaining_seconds":…}]}` as of `now`.
fn parse(value: &serde_json::Value, now: SystemTime) -> Vec<ActiveDrill> {
    value
        .get("faults")
        .and_then(|f| f.as_array())
        .map(|faults| {
            faults
                .iter()
                .filter_map(|f| {
                    let id = match f.get("id")? {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let kind = f.get("kind")?.as_str()?.to_string();
                    let ends = f
                        .get("remaining_seconds")
                        .and_then(|s| s.as_u64())
                        .map(|s| now + Duration::from_secs(s));
                    Some(ActiveDrill { id, kind, ends })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Lists the active faults every two seconds and reports a change, until `cancel`.
pub fn spawn_poll(endpoint: String, actions: UnboundedSender<Action>, cancel: CancellationToken) {
    tokio::spawn(async move {
        let Ok(client) = client() else {
            return;
        };
        let mut last: Option<Vec<(String, String)>> = None;
        loop {
            if let Ok(active) = list(&client, &endpoint).await {
                let key: Vec<(String, String)> = active
                    .iter()
                    .map(|a| (a.id.clone(), a.kind.clone()))
                    .collect();
                if last.as_ref() != Some(&key) {
                    last = Some(key);
                    if actions.send(Action::DrillsActive(active)).is_err() {
                        return;
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_faults_are_read_from_the_simulators_list() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let value = serde_json::json!({"faults": [
            {"id": 3, "kind": "error_spike", "remaining_seconds": 25},
            {"id": "4", "kind": "api_outage"},
            {"kind": "no id"},
        ]});
        let active = parse(&value, now);
        assert_eq!(active.len(), 2);
        assert_eq!(active[0].id, "3");
        assert_eq!(active[0].ends, Some(now + Duration::from_secs(25)));
        assert_eq!(active[1].ends, None);
        assert!(parse(&serde_json::json!({"x": 1}), now).is_empty());
    }
}
