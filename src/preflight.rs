//! TEMPORARY stand-in (not committed): the preflight helper's branch replaces this file.

use std::path::PathBuf;
use std::time::Duration;

use crate::cluster::client::Connection;
use crate::metrics::prometheus::{PromClient, PromConfig};
use crate::plan::Plan;

pub struct EnvLink {
    pub name: String,
    pub context: String,
    pub namespace: String,
    pub connection: Connection,
    pub prometheus: String,
    pub prom: PromClient,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}
#[derive(Debug, Clone, PartialEq)]
pub struct CheckLine {
    pub environment: String,
    pub status: CheckStatus,
    pub text: String,
}
pub struct Options {
    pub kubeconfig: Option<PathBuf>,
    pub context: Option<String>,
    pub prometheus: Option<String>,
    pub timeout: Duration,
}
pub struct Preflight {
    pub envs: Vec<EnvLink>,
    pub lines: Vec<CheckLine>,
}
impl Preflight {
    pub fn passed(&self) -> bool {
        !self.lines.iter().any(|l| l.status == CheckStatus::Fail)
    }
    pub fn failures(&self) -> impl Iterator<Item = &CheckLine> {
        self.lines.iter().filter(|l| l.status == CheckStatus::Fail)
    }
    pub fn env(&self, name: &str) -> Option<&EnvLink> {
        self.envs.iter().find(|e| e.name == name)
    }
}
pub fn environments_used(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in &plan.phases {
        if !out.contains(&p.environment) {
            out.push(p.environment.clone());
        }
    }
    out
}
pub async fn run(plan: &Plan, options: &Options) -> Preflight {
    let mut envs = Vec::new();
    let mut lines = Vec::new();
    for name in environments_used(plan) {
        let Some(env) = plan.environments.get(&name) else {
            continue;
        };
        let context = options.context.clone().or(env.context.clone());
        match crate::cluster::client::connect(options.kubeconfig.as_deref(), context.as_deref())
            .await
        {
            Ok(connection) => {
                let url = options
                    .prometheus
                    .clone()
                    .or(env.prometheus.clone())
                    .unwrap_or_default();
                let Ok(prom) = PromConfig::for_environment(&url, env, options.timeout)
                    .map_err(|e| e.to_string())
                    .and_then(|c| PromClient::new(c).map_err(|e| e.to_string()))
                else {
                    continue;
                };
                lines.push(CheckLine {
                    environment: name.clone(),
                    status: CheckStatus::Pass,
                    text: "connected".into(),
                });
                envs.push(EnvLink {
                    name: name.clone(),
                    context: connection.context.clone(),
                    namespace: env.namespace.clone(),
                    connection,
                    prometheus: url,
                    prom,
                });
            }
            Err(e) => lines.push(CheckLine {
                environment: name.clone(),
                status: CheckStatus::Fail,
                text: e.to_string(),
            }),
        }
    }
    Preflight { envs, lines }
}
