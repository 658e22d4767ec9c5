//! The effect runner: carries out what `update` asked for, with the clients it owns, and
//! reports every result back as an action. Decides nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::action::{Action, Effect, EffectId};
use crate::plan::Weight;
use crate::traffic::TrafficRouter;

/// Hands effects to the tasks that perform them.
#[derive(Clone)]
pub struct EffectRunner {
    weights: UnboundedSender<WeightWrite>,
}

#[derive(Debug)]
struct WeightWrite {
    id: EffectId,
    weight: Weight,
    emergency: bool,
}

impl EffectRunner {
    /// Starts the runner's tasks; results go to `actions`.
    pub fn start(router: Arc<dyn TrafficRouter>, actions: UnboundedSender<Action>) -> EffectRunner {
        let (weights, rx) = unbounded_channel();
        tokio::spawn(weight_writer(router, rx, actions));
        EffectRunner { weights }
    }

    pub fn run(&self, effect: Effect) {
        match effect {
            Effect::SetWeight {
                id,
                weight,
                emergency,
            } => {
                // The writer only stops when the runner is dropped, so a failed send means the
                // console is shutting down and there is nobody to report to.
                let _ = self.weights.send(WeightWrite {
                    id,
                    weight,
                    emergency,
                });
            }
        }
    }
}

/// Writes weights one at a time, in order, so two quick `+` presses end at +2 steps and not at
/// whichever request happened to land last.
async fn weight_writer(
    router: Arc<dyn TrafficRouter>,
    mut rx: UnboundedReceiver<WeightWrite>,
    actions: UnboundedSender<Action>,
) {
    let mut queue: VecDeque<WeightWrite> = VecDeque::new();
    loop {
        if queue.is_empty() {
            match rx.recv().await {
                Some(w) => queue.push_back(w),
                None => return,
            }
        }
        while let Ok(w) = rx.try_recv() {
            queue.push_back(w);
        }
        if let Some(pos) = queue.iter().rposition(|w| w.emergency) {
            for dropped in queue.drain(..pos) {
                let _ = actions.send(Action::EffectDone {
                    id: dropped.id,
                    result: Err(format!(
                        "weight {} not written: superseded by rollback",
                        dropped.weight
                    )),
                });
            }
        }
        let Some(write) = queue.pop_front() else {
            continue;
        };
        let started = Instant::now();
        let result = router
            .set_weight(write.weight)
            .await
            .map(|()| {
                format!(
                    "canary weight {} stored on {} ({} ms)",
                    write.weight,
                    router.describe(),
                    started.elapsed().as_millis()
                )
            })
            .map_err(|e| format!("canary weight {} NOT set: {e}", write.weight));
        if actions
            .send(Action::EffectDone {
                id: write.id,
                result,
            })
            .is_err()
        {
            return;
        }
    }
}
