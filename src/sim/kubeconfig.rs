//! Writing a kubeconfig that points kubectl and kube-rs at the simulator: one context per plan
//! environment, each with its namespace. Text only; knows nothing of the API server.

use std::path::Path;

use crate::plan::{Environment, Plan};

/// The context the simulator's kubeconfig offers for environment `name`: its own `context`, or
/// `sim-<environment>` when it names none.
pub fn context_name(name: &str, env: &Environment) -> String {
    env.context.clone().unwrap_or_else(|| format!("sim-{name}"))
}

/// The context names the simulator's kubeconfig offers for `plan`, with their namespaces.
pub fn contexts(plan: &Plan) -> Vec<(String, String)> {
    plan.environments
        .iter()
        .map(|(name, env)| (context_name(name, env), env.namespace.clone()))
        .collect()
}

/// A kubeconfig whose contexts all reach `server`; the first is current.
pub fn render(server: &str, contexts: &[(String, String)]) -> String {
    let mut out = String::from("apiVersion: v1\nkind: Config\npreferences: {}\nclusters:\n");
    out.push_str(&format!(
        "- name: warroom-sim\n  cluster:\n    server: {server}\n"
    ));
    out.push_str("users:\n- name: warroom-sim\n  user:\n    token: warroom-sim\ncontexts:\n");
    for (name, namespace) in contexts {
        out.push_str(&format!(
            "- name: {}\n  context:\n    cluster: warroom-sim\n    user: warroom-sim\n    namespace: {}\n",
            quote(name),
            quote(namespace)
        ));
    }
    if let Some((first, _)) = contexts.first() {
        out.push_str(&format!("current-context: {}\n", quote(first)));
    }
    out
}

/// A kubeconfig with one cluster per context: `(context, namespace, server)`, each context
/// reaching its own simulator (a rehearsal gives every environment one). The first is current.
pub fn render_each(contexts: &[(String, String, String)]) -> String {
    let mut out = String::from("apiVersion: v1\nkind: Config\npreferences: {}\nclusters:\n");
    for (name, _, server) in contexts {
        out.push_str(&format!(
            "- name: {}\n  cluster:\n    server: {}\n",
            quote(name),
            quote(server)
        ));
    }
    out.push_str("users:\n- name: warroom-sim\n  user:\n    token: warroom-sim\ncontexts:\n");
    for (name, namespace, _) in contexts {
        out.push_str(&format!(
            "- name: {0}\n  context:\n    cluster: {0}\n    user: warroom-sim\n    namespace: {1}\n",
            quote(name),
            quote(namespace)
        ));
    }
    if let Some((first, _, _)) = contexts.first() {
        out.push_str(&format!("current-context: {}\n", quote(first)));
    }
    out
}

/// Writes the kubeconfig with owner-only permissions, as kubectl does.
pub fn write(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_context_points_at_the_simulator_with_its_namespace() {
        let text = render(
            "http://127.0.0.1:1234",
            &[
                ("sim-dev".to_string(), "shop".to_string()),
                ("prod".to_string(), "shop-prod".to_string()),
            ],
        );
        let kc: kube::config::Kubeconfig = serde_saphyr::from_str(&text).expect("valid kubeconfig");
        assert_eq!(kc.current_context.as_deref(), Some("sim-dev"));
        assert_eq!(kc.contexts.len(), 2);
        let prod = kc.contexts[1].context.as_ref().expect("context body");
        assert_eq!(prod.namespace.as_deref(), Some("shop-prod"));
        assert_eq!(
            kc.clusters[0]
                .cluster
                .as_ref()
                .and_then(|c| c.server.as_deref()),
            Some("http://127.0.0.1:1234")
        );
    }

    #[test]
    fn each_context_can_reach_a_server_of_its_own() {
        let text = render_each(&[
            (
                "rehearsal-dev".into(),
                "shop".into(),
                "http://127.0.0.1:1".into(),
            ),
            (
                "rehearsal-prod".into(),
                "pay".into(),
                "http://127.0.0.1:2".into(),
            ),
        ]);
        let kc: kube::config::Kubeconfig = serde_saphyr::from_str(&text).expect("valid kubeconfig");
        assert_eq!(kc.current_context.as_deref(), Some("rehearsal-dev"));
        let prod = kc.contexts[1].context.as_ref().expect("context body");
        assert_eq!(prod.cluster, "rehearsal-prod");
        assert_eq!(prod.namespace.as_deref(), Some("pay"));
        let server = |i: usize| {
            kc.clusters[i]
                .cluster
                .as_ref()
                .and_then(|c| c.server.clone())
        };
        assert_eq!(server(1).as_deref(), Some("http://127.0.0.1:2"));
    }
}
