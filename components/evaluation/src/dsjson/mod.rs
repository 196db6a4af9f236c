//! Logged decisions in Vowpal Wabbit's decision-service JSON (DSJSON): the
//! format `vw --dsjson`, Azure Personalizer and the Open Bandit Pipeline's
//! loaders read. One line is one joined event: the context, the candidate
//! actions, the logging policy's probabilities, the action it took and the
//! cost observed. `docs/OPE.md` gives the format as this crate writes and
//! reads it.
//!
//! - [`DsjsonLine`]: one line as JSON, field for field (serde).
//! - [`LoggedEvent`]: a line checked against the format's rules, with the
//!   actions in `_multi` order: what the estimators and `cx ope` use.
//! - [`DsjsonReader`] and [`DsjsonWriter`]: bounded line-by-line reading
//!   (every bad line an [`Error`] naming the line and field) and writing.
//!
//! Our context (`c`) holds the request under [`CONTEXT_KEY`] (`"cx"`, a
//! [`ContextJson`]) and one object per candidate action in `_multi`,
//! `{"offer": <catalog offer id>}`.

mod read;
mod timestamp;
mod write;

pub use read::DsjsonReader;
pub use timestamp::{format_timestamp, parse_timestamp};
pub use write::DsjsonWriter;

use crate::context::ContextJson;
use crate::error::Error;
use cx_features::RequestContext;
use serde::{Deserialize, Serialize};

/// The `Version` this crate writes and reads.
pub const VERSION: &str = "1";

/// The key of our request context inside `c`.
pub const CONTEXT_KEY: &str = "cx";

/// Longest line read, bytes (without its line break). A longer line is an
/// error, and is skipped without being held in memory.
pub const LINE_BYTES_MAX: usize = 1 << 20;

/// Most candidate actions one event may list.
pub const ACTIONS_MAX: usize = 1024;

/// How far the probabilities `p` may sum from 1 (they are often written
/// from single-precision values).
pub const PROBABILITY_SUM_TOLERANCE: f64 = 1e-4;

/// How far `_label_probability` may differ from `p[0]`.
pub const LABEL_PROBABILITY_TOLERANCE: f64 = 1e-6;

/// One DSJSON line, field for field, in the order the decision service
/// writes them. Fields it does not name (`o`, `pdrop`, ...) are ignored on
/// reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DsjsonLine {
    /// Minus the reward of the action taken (a click is -1).
    #[serde(rename = "_label_cost")]
    pub label_cost: f64,
    /// The logging policy's probability of the action taken: `p[0]`.
    #[serde(rename = "_label_probability")]
    pub label_probability: f64,
    /// The action taken, 1-based into `c._multi`: `a[0]`.
    #[serde(rename = "_label_Action")]
    pub label_action: u32,
    /// The action taken, 0-based into `c._multi`: `_label_Action - 1`.
    #[serde(rename = "_labelIndex")]
    pub label_index: u32,
    /// When the decision was made, RFC 3339 UTC.
    #[serde(rename = "Timestamp")]
    pub timestamp: String,
    /// The format's version, [`VERSION`].
    #[serde(rename = "Version")]
    pub version: String,
    /// The decision's id.
    #[serde(rename = "EventId")]
    pub event_id: String,
    /// Every candidate action, 1-based into `c._multi`, the one taken first.
    pub a: Vec<u32>,
    /// The context: the request and the candidate actions' features.
    pub c: DsjsonContext,
    /// The logging policy's probability of each action, in `a` order.
    pub p: Vec<f64>,
    /// The logging model.
    #[serde(rename = "VWState", default, skip_serializing_if = "Option::is_none")]
    pub vw_state: Option<VwState>,
    /// The cost before any transformation; we write it equal to `_label_cost`.
    #[serde(
        rename = "_original_label_cost",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub original_label_cost: Option<f64>,
    /// The experiment arm the decision was made in (ours; absent outside
    /// experiments). Readers that do not know it ignore it.
    #[serde(
        rename = "_experiment",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub experiment: Option<ArmJson>,
}

/// An experiment arm as a DSJSON line records it: the experiment's key and
/// the variation's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArmJson {
    /// The experiment's key.
    pub key: String,
    /// The variation's key (`meta[i].key`, or its index).
    pub variation: String,
}

/// A line's `c`: our request context and the candidate actions. Other
/// namespaces a foreign log carries are ignored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DsjsonContext {
    /// The request, under [`CONTEXT_KEY`].
    #[serde(rename = "cx")]
    pub request: ContextJson,
    /// One entry per candidate action.
    #[serde(rename = "_multi")]
    pub actions: Vec<ActionJson>,
}

/// One candidate action's features: the catalog offer it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionJson {
    /// The catalog's offer id.
    pub offer: u64,
}

/// The logging model, as the decision service records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VwState {
    /// The model's id (ours: the SHA-256 of the model file).
    pub m: String,
}

/// One logged decision, checked, with its actions in `_multi` order.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedEvent {
    /// The decision's id (`EventId`).
    pub event_id: String,
    /// When it was made, unix ns (`Timestamp`).
    pub timestamp_unix_ns: u64,
    /// The logging model's id (`VWState.m`), if recorded.
    pub model_id: Option<String>,
    /// The request (`c.cx`).
    pub context: RequestContext,
    /// The candidate offers, in `_multi` order.
    pub offers: Vec<u64>,
    /// The offer taken: an index into [`Self::offers`] (`_labelIndex`).
    pub chosen: usize,
    /// The logging policy's probability of each offer, in `_multi` order.
    pub probabilities: Vec<f64>,
    /// The reward observed: minus `_label_cost`.
    pub reward: f64,
    /// The experiment arm it was decided in (`_experiment`), if any.
    pub experiment: Option<ArmJson>,
}

impl LoggedEvent {
    /// The logging policy's probability of the offer taken, in `(0, 1]`.
    pub fn logging_probability(&self) -> f64 {
        self.probabilities[self.chosen]
    }

    /// Checks `line` against the format's rules. The error is the field at
    /// fault and what is wrong with it.
    pub fn from_line(line: DsjsonLine) -> Result<Self, (String, String)> {
        fn fail<T>(field: &str, reason: String) -> Result<T, (String, String)> {
            Err((field.to_string(), reason))
        }
        if line.version != VERSION {
            return fail(
                "Version",
                format!("is {:?}, expected {VERSION:?}", line.version),
            );
        }
        if line.event_id.is_empty() {
            return fail("EventId", "is empty".into());
        }
        let timestamp_unix_ns =
            parse_timestamp(&line.timestamp).or_else(|reason| fail("Timestamp", reason))?;
        let n = line.a.len();
        if n == 0 {
            return fail("a", "is empty: an event needs at least one action".into());
        }
        if n > ACTIONS_MAX {
            return fail("a", format!("lists {n} actions, more than {ACTIONS_MAX}"));
        }
        if line.c.actions.len() != n {
            return fail(
                "c._multi",
                format!("holds {} actions but `a` lists {n}", line.c.actions.len()),
            );
        }
        if line.p.len() != n {
            return fail(
                "p",
                format!("holds {} probabilities but `a` lists {n}", line.p.len()),
            );
        }
        let mut seen = vec![false; n];
        for (i, &action) in line.a.iter().enumerate() {
            let index = (action as usize).wrapping_sub(1);
            if index >= n {
                return fail(
                    &format!("a[{i}]"),
                    format!("is {action}, outside 1..={n} (`_multi` holds {n} actions)"),
                );
            }
            if std::mem::replace(&mut seen[index], true) {
                return fail(&format!("a[{i}]"), format!("repeats action {action}"));
            }
        }
        if !line.a.contains(&line.label_action) {
            return fail(
                "_label_Action",
                format!("is {}, an action not in `a`", line.label_action),
            );
        }
        if line.label_action != line.a[0] {
            return fail(
                "_label_Action",
                format!(
                    "is {}, but the action taken must come first in `a`, which starts with {}",
                    line.label_action, line.a[0]
                ),
            );
        }
        if u64::from(line.label_index) + 1 != u64::from(line.label_action) {
            return fail(
                "_labelIndex",
                format!(
                    "is {}, expected `_label_Action` - 1 = {}",
                    line.label_index,
                    line.label_action - 1
                ),
            );
        }
        let mut sum = 0.0;
        for (i, &p) in line.p.iter().enumerate() {
            if !(0.0..=1.0).contains(&p) {
                return fail(&format!("p[{i}]"), format!("is {p}, outside [0, 1]"));
            }
            sum += p;
        }
        if line.p[0] == 0.0 {
            return fail(
                "p[0]",
                "is 0: the action taken must have a probability in (0, 1]".into(),
            );
        }
        if (sum - 1.0).abs() > PROBABILITY_SUM_TOLERANCE {
            return fail(
                "p",
                format!("sums to {sum}, not 1 (within {PROBABILITY_SUM_TOLERANCE})"),
            );
        }
        let label_p = line.label_probability;
        if !(label_p > 0.0 && label_p <= 1.0) {
            return fail(
                "_label_probability",
                format!("is {label_p}, outside (0, 1]"),
            );
        }
        if (label_p - line.p[0]).abs() > LABEL_PROBABILITY_TOLERANCE {
            return fail(
                "_label_probability",
                format!("is {label_p}, but `p[0]` is {}", line.p[0]),
            );
        }
        if !line.label_cost.is_finite() {
            return fail("_label_cost", format!("is {}, not finite", line.label_cost));
        }
        if let Some(original) = line.original_label_cost.filter(|c| !c.is_finite()) {
            return fail("_original_label_cost", format!("is {original}, not finite"));
        }
        let offers: Vec<u64> = line.c.actions.iter().map(|a| a.offer).collect();
        for (i, offer) in offers.iter().enumerate() {
            if offers[..i].contains(offer) {
                return fail(
                    &format!("c._multi[{i}].offer"),
                    format!("repeats offer {offer}"),
                );
            }
        }
        let mut probabilities = vec![0.0; n];
        for (&action, &p) in line.a.iter().zip(&line.p) {
            probabilities[action as usize - 1] = p;
        }
        // A cost of 0 is a reward of 0, not -0.
        let reward = 0.0 - line.label_cost;
        Ok(Self {
            event_id: line.event_id,
            timestamp_unix_ns,
            model_id: line.vw_state.map(|state| state.m),
            context: RequestContext::from(line.c.request),
            offers,
            chosen: line.label_index as usize,
            probabilities,
            reward,
            experiment: line.experiment,
        })
    }

    /// The DSJSON line of this event: `a` lists the offer taken first, then
    /// the others in `_multi` order. The error names the field that breaks
    /// the format (the reader would refuse the line).
    pub fn to_line(&self) -> Result<DsjsonLine, Error> {
        let bad = |field: &'static str, reason: String| Error::Unwritable {
            event: self.event_id.clone(),
            field,
            reason,
        };
        let n = self.offers.len();
        if n == 0 || n > ACTIONS_MAX {
            return Err(bad(
                "offers",
                format!("holds {n} offers, expected 1..={ACTIONS_MAX}"),
            ));
        }
        if self.probabilities.len() != n {
            return Err(bad(
                "probabilities",
                format!("holds {} values for {n} offers", self.probabilities.len()),
            ));
        }
        if self.chosen >= n {
            return Err(bad("chosen", format!("is {}, not below {n}", self.chosen)));
        }
        if !self.reward.is_finite() {
            return Err(bad("reward", format!("is {}, not finite", self.reward)));
        }
        let mut a = Vec::with_capacity(n);
        a.push(self.chosen as u32 + 1);
        a.extend((0..n).filter(|&i| i != self.chosen).map(|i| i as u32 + 1));
        let p = a
            .iter()
            .map(|&action| self.probabilities[action as usize - 1])
            .collect();
        let cost = 0.0 - self.reward;
        let line = DsjsonLine {
            label_cost: cost,
            label_probability: self.logging_probability(),
            label_action: self.chosen as u32 + 1,
            label_index: self.chosen as u32,
            timestamp: format_timestamp(self.timestamp_unix_ns),
            version: VERSION.into(),
            event_id: self.event_id.clone(),
            a,
            c: DsjsonContext {
                request: ContextJson::from(&self.context),
                actions: self
                    .offers
                    .iter()
                    .map(|&offer| ActionJson { offer })
                    .collect(),
            },
            p,
            vw_state: self.model_id.clone().map(|m| VwState { m }),
            original_label_cost: Some(cost),
            experiment: self.experiment.clone(),
        };
        // The same checks the reader makes, so no written line is refused.
        Self::from_line(line.clone()).map_err(|(field, reason)| Error::Unwritable {
            event: self.event_id.clone(),
            field: "line",
            reason: format!("`{field}` {reason}"),
        })?;
        Ok(line)
    }
}
