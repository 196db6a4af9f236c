//! The serving side of model monitoring: [`Monitor`] counts each decided
//! request's features and top prediction into the current window of a
//! ring, and each feedback outcome (an impression, a click, with the `p`
//! the decision used) into a ring of impression windows. When a window
//! closes it is added to the ring's totals (and the oldest subtracted), and
//! the alarms are judged on the totals: PSI per feature and on predictions,
//! calibration, CTR against the training base rate.
//!
//! Everything is allocated when the monitor is built; an update is a few
//! table loads and increments ([`Monitor::observe`]), and closing a window
//! costs `O(features x BINS_MAX)`, once per `window_requests` requests.
//! Alarm transitions wait in a bounded queue
//! ([`Monitor::take_transitions`]) for the host to log; past
//! [`TRANSITIONS_MAX`] they are counted and dropped.

use super::config::MonitorConfig;
use super::reference::{FeatureKind, Reference};
use super::{bin_of, psi, BINS_MAX, SIGNIFICANCE_Z};
use serde::Serialize;

/// Transitions held for the host at most.
pub const TRANSITIONS_MAX: usize = 64;

/// No feature: a column no monitored feature reads.
const UNMAPPED: u32 = u32::MAX;
/// A numeric column: its bin depends on the value.
const NUMERIC: u32 = 0xffff;

/// What an alarm is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// A feature's PSI at or above the alarm level.
    Psi,
    /// The predictions' PSI at or above it.
    PredictionPsi,
    /// Observed CTR off the predicted by more than the tolerance.
    Calibration,
    /// Observed CTR below the training base rate by more than `ctr_drop`.
    CtrDrop,
}

impl AlarmKind {
    /// snake_case label (metrics, logs).
    pub fn label(self) -> &'static str {
        match self {
            Self::Psi => "psi",
            Self::PredictionPsi => "prediction_psi",
            Self::Calibration => "calibration",
            Self::CtrDrop => "ctr_drop",
        }
    }
}

/// An alarm that rose or cleared.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Transition {
    /// What about.
    pub kind: AlarmKind,
    /// The feature's index (for [`AlarmKind::Psi`]), see [`Monitor::feature_name`].
    pub feature: usize,
    /// Raised (true) or cleared.
    pub raised: bool,
    /// The value judged (PSI, or observed CTR).
    pub value: f64,
    /// Requests seen when it happened.
    pub at_request: u64,
}

/// Observed against predicted click rates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Outcomes {
    /// Impressions.
    pub impressions: u64,
    /// Clicks.
    pub clicks: u64,
    /// Sum of the predicted `p` of the impressions' offers.
    pub predicted: f64,
}

impl Outcomes {
    fn add(&mut self, o: &Outcomes) {
        self.impressions += o.impressions;
        self.clicks += o.clicks;
        self.predicted += o.predicted;
    }

    fn sub(&mut self, o: &Outcomes) {
        self.impressions -= o.impressions;
        self.clicks -= o.clicks;
        self.predicted = (self.predicted - o.predicted).max(0.0);
    }

    /// Observed CTR (0 without impressions).
    pub fn observed_ctr(&self) -> f64 {
        self.clicks as f64 / self.impressions.max(1) as f64
    }

    /// Mean predicted CTR (0 without impressions).
    pub fn predicted_ctr(&self) -> f64 {
        self.predicted / self.impressions.max(1) as f64
    }
}

/// The serving distributions and alarms of one engine (a resource of its
/// World, fed by [`super::system::observe`] and the engine's feedback).
#[derive(Debug, bevy_ecs::prelude::Resource)]
pub struct Monitor {
    config: MonitorConfig,
    reference: Option<Reference>,
    /// Per schema column: `feature << 16 | bin`, [`NUMERIC`] bin, or [`UNMAPPED`].
    columns: Vec<u32>,
    /// Per feature: the bin of a request without its columns (`BINS_MAX`: none).
    absent: Vec<u8>,
    /// Features whose PSI may raise an alarm.
    alarmed: u64,
    /// Every feature.
    all: u64,
    features: usize,
    /// `[windows + 1][features + 1][BINS_MAX]`; the last feature row is the predictions.
    windows: Vec<u32>,
    totals: Vec<u64>,
    current: usize,
    in_window: u32,
    closed: u64,
    requests: u64,
    psi: Vec<f64>,
    alarm: Vec<bool>,
    outcomes: Vec<Outcomes>,
    outcome_totals: Outcomes,
    outcome_current: usize,
    outcome_closed: u64,
    calibration_alarm: bool,
    ctr_alarm: bool,
    transitions: Vec<Transition>,
    transitions_dropped: u64,
    alarms_raised: u64,
}

impl Monitor {
    /// A monitor for `reference` (none: it counts requests and outcomes
    /// and says "no reference", raising no PSI alarm) and `schema_width`
    /// columns. `config` must have been validated.
    pub fn new(config: MonitorConfig, reference: Option<Reference>, schema_width: usize) -> Self {
        let features = reference.as_ref().map_or(0, |r| r.features.len());
        let mut columns = vec![UNMAPPED; schema_width];
        let mut absent = vec![BINS_MAX as u8; features];
        let (mut alarmed, mut all) = (0u64, 0u64);
        if let Some(r) = &reference {
            for (i, f) in r.features.iter().enumerate() {
                all |= 1 << i;
                if !config.psi_ignore.contains(&f.block) {
                    alarmed |= 1 << i;
                }
                absent[i] = f.absent_bin().map_or(BINS_MAX as u8, |b| b as u8);
                for w in 0..f.width {
                    let bin = match f.kind {
                        FeatureKind::Numeric => NUMERIC,
                        _ => f.bin(w, 1.0) as u32,
                    };
                    columns[(f.offset + w) as usize] = (i as u32) << 16 | bin;
                }
            }
        }
        let stride = (features + 1) * BINS_MAX;
        let slots = config.windows as usize + 1;
        let enabled = config.enabled;
        Self {
            columns,
            absent,
            alarmed,
            all,
            features,
            windows: vec![0; if enabled { slots * stride } else { 0 }],
            totals: vec![0; stride],
            current: 0,
            in_window: 0,
            closed: 0,
            requests: 0,
            psi: vec![0.0; features + 1],
            alarm: vec![false; features + 1],
            outcomes: vec![Outcomes::default(); if enabled { slots } else { 0 }],
            outcome_totals: Outcomes::default(),
            outcome_current: 0,
            outcome_closed: 0,
            calibration_alarm: false,
            ctr_alarm: false,
            transitions: Vec::with_capacity(TRANSITIONS_MAX),
            transitions_dropped: 0,
            alarms_raised: 0,
            config,
            reference,
        }
    }

    /// The reference, if the model has one.
    pub fn reference(&self) -> Option<&Reference> {
        self.reference.as_ref()
    }

    /// The config.
    pub fn config(&self) -> &MonitorConfig {
        &self.config
    }

    /// The name of feature `i` (`prediction` past the last).
    pub fn feature_name(&self, i: usize) -> &str {
        self.reference
            .as_ref()
            .and_then(|r| r.features.get(i))
            .map_or("prediction", |f| f.name.as_str())
    }

    /// What transition `t` is about: the feature's name for a PSI alarm,
    /// `prediction` for the predictions', `""` for calibration and CTR.
    pub fn subject(&self, t: &Transition) -> &str {
        match t.kind {
            AlarmKind::Psi => self.feature_name(t.feature),
            AlarmKind::PredictionPsi => "prediction",
            AlarmKind::Calibration | AlarmKind::CtrDrop => "",
        }
    }

    /// Counts one decided request: its sparse row and, when the model (or
    /// the cache of its outputs) scored it, its highest `p`. Allocates
    /// nothing.
    pub fn observe(&mut self, columns: &[u32], values: &[f32], top_p: Option<f32>) {
        if !self.config.enabled {
            return;
        }
        self.requests += 1;
        let stride = (self.features + 1) * BINS_MAX;
        let base = self.current * stride;
        if self.reference.is_some() {
            let window = &mut self.windows[base..base + stride];
            let mut seen = 0u64;
            for (&c, &v) in columns.iter().zip(values) {
                let Some(&m) = self.columns.get(c as usize) else {
                    continue;
                };
                if m == UNMAPPED {
                    continue;
                }
                let f = (m >> 16) as usize;
                let mut bin = (m & 0xffff) as usize;
                if m & 0xffff == NUMERIC {
                    let edges = self
                        .reference
                        .as_ref()
                        .map_or(&[][..], |r| &r.features[f].edges);
                    bin = bin_of(edges, v);
                }
                window[f * BINS_MAX + bin.min(BINS_MAX - 1)] += 1;
                seen |= 1 << f;
            }
            let mut missing = self.all & !seen;
            while missing != 0 {
                let f = missing.trailing_zeros() as usize;
                missing &= missing - 1;
                let bin = usize::from(self.absent[f]);
                if bin < BINS_MAX {
                    window[f * BINS_MAX + bin] += 1;
                }
            }
            if let Some(p) = top_p {
                let bin = bin_of(&super::PREDICTION_EDGES, p).min(BINS_MAX - 1);
                window[self.features * BINS_MAX + bin] += 1;
            }
        }
        self.in_window += 1;
        if self.in_window >= self.config.window_requests {
            self.close_window();
        }
    }

    fn close_window(&mut self) {
        let stride = (self.features + 1) * BINS_MAX;
        let slots = self.config.windows as usize + 1;
        let base = self.current * stride;
        for (t, &c) in self
            .totals
            .iter_mut()
            .zip(&self.windows[base..base + stride])
        {
            *t += u64::from(c);
        }
        self.current = (self.current + 1) % slots;
        self.closed += 1;
        let base = self.current * stride;
        if self.closed > u64::from(self.config.windows) {
            // The slot about to be reused holds the oldest closed window.
            for (t, &c) in self
                .totals
                .iter_mut()
                .zip(&self.windows[base..base + stride])
            {
                *t -= u64::from(c);
            }
        }
        self.windows[base..base + stride].fill(0);
        self.in_window = 0;
        self.judge_psi();
    }

    fn judge_psi(&mut self) {
        // Moved out and back (no copy) so that `push` may borrow self.
        let Some(reference) = self.reference.take() else {
            return;
        };
        let threshold = self.config.psi_threshold();
        for i in 0..=self.features {
            let share = match reference.features.get(i) {
                Some(f) => &f.share[..],
                None => &reference.prediction.share[..],
            };
            let counts = &self.totals[i * BINS_MAX..i * BINS_MAX + share.len()];
            let value = psi(share, counts);
            self.psi[i] = value;
            let may_alarm = i == self.features || self.alarmed & (1 << i) != 0;
            let raised = may_alarm && value >= threshold;
            if raised != self.alarm[i] {
                self.alarm[i] = raised;
                let kind = if i == self.features {
                    AlarmKind::PredictionPsi
                } else {
                    AlarmKind::Psi
                };
                self.push(kind, i, raised, value);
            }
        }
        self.reference = Some(reference);
    }

    fn push(&mut self, kind: AlarmKind, feature: usize, raised: bool, value: f64) {
        self.alarms_raised += u64::from(raised);
        if self.transitions.len() < TRANSITIONS_MAX {
            self.transitions.push(Transition {
                kind,
                feature,
                raised,
                value,
                at_request: self.requests,
            });
        } else {
            self.transitions_dropped += 1;
        }
    }

    /// Counts one feedback outcome of a decision that predicted `p_click`:
    /// an impression, and whether it was clicked (a click counts once, with
    /// its impression). Allocates nothing.
    pub fn observe_outcome(&mut self, p_click: f32, impression: bool, click: bool) {
        if !self.config.enabled {
            return;
        }
        let o = &mut self.outcomes[self.outcome_current];
        if impression {
            o.impressions += 1;
            o.predicted += f64::from(p_click.clamp(0.0, 1.0));
        }
        o.clicks += u64::from(click);
        if o.impressions >= u64::from(self.config.window_impressions) {
            let closed = *o;
            self.outcome_totals.add(&closed);
            let slots = self.outcomes.len();
            self.outcome_current = (self.outcome_current + 1) % slots;
            self.outcome_closed += 1;
            if self.outcome_closed > u64::from(self.config.windows) {
                let oldest = self.outcomes[self.outcome_current];
                self.outcome_totals.sub(&oldest);
            }
            self.outcomes[self.outcome_current] = Outcomes::default();
            self.judge_outcomes();
        }
    }

    fn judge_outcomes(&mut self) {
        let t = self.outcome_totals;
        let n = t.impressions;
        let enough = n >= self.config.calibration_min_impressions.max(1);
        let (observed, predicted) = (t.observed_ctr(), t.predicted_ctr());
        let se = |p: f64| (p * (1.0 - p) / n.max(1) as f64).sqrt();
        let gap = (observed - predicted).abs();
        let calibration = enough
            && predicted > 0.0
            && gap > self.config.calibration_tolerance * predicted
            && gap > SIGNIFICANCE_Z * se(predicted);
        if calibration != self.calibration_alarm {
            self.calibration_alarm = calibration;
            self.push(AlarmKind::Calibration, 0, calibration, observed);
        }
        let base = self.reference.as_ref().map_or(0.0, |r| r.base_ctr);
        let drop = enough
            && base > 0.0
            && observed < base * (1.0 - self.config.ctr_drop)
            && base - observed > SIGNIFICANCE_Z * se(base);
        if drop != self.ctr_alarm {
            self.ctr_alarm = drop;
            self.push(AlarmKind::CtrDrop, 0, drop, observed);
        }
    }

    /// Hands every alarm transition since the last call to `f`, oldest
    /// first (for the host's log). Allocates nothing.
    pub fn take_transitions(&mut self, mut f: impl FnMut(&Self, Transition)) {
        let taken = std::mem::take(&mut self.transitions);
        for t in &taken {
            f(self, *t);
        }
        self.transitions = taken;
        self.transitions.clear();
    }

    /// Alarms raised since the monitor was built (each rise once).
    pub fn alarms_raised(&self) -> u64 {
        self.alarms_raised
    }

    /// Whether an alarm of `kind` is up now (for [`AlarmKind::Psi`], on
    /// the feature called `feature`).
    pub fn alarm(&self, kind: AlarmKind, feature: &str) -> bool {
        match kind {
            AlarmKind::Psi => {
                (0..self.features).any(|i| self.alarm[i] && self.feature_name(i) == feature)
            }
            AlarmKind::PredictionPsi => self.alarm[self.features],
            AlarmKind::Calibration => self.calibration_alarm,
            AlarmKind::CtrDrop => self.ctr_alarm,
        }
    }

    /// The state, for metrics, the admin endpoint and `cx monitor`.
    /// Allocates (names, lists): call it off the hot path.
    pub fn report(&self) -> MonitorReport {
        let reference = self.reference.as_ref();
        let level = |v: f64| {
            if v >= self.config.psi_significant {
                "significant"
            } else if v >= self.config.psi_moderate {
                "moderate"
            } else {
                "none"
            }
        };
        let judged = self.closed > 0 && reference.is_some();
        let features = (0..=self.features)
            .filter(|_| judged)
            .map(|i| FeatureState {
                name: self.feature_name(i).to_string(),
                psi: self.psi[i],
                level: level(self.psi[i]),
                alarm: self.alarm[i],
                ignored: i < self.features && self.alarmed & (1 << i) == 0,
            })
            .collect();
        let mut alarms = Vec::new();
        for i in (0..=self.features).filter(|&i| self.alarm[i]) {
            let kind = if i == self.features {
                AlarmKind::PredictionPsi
            } else {
                AlarmKind::Psi
            };
            alarms.push((kind.label(), self.feature_name(i).to_string()));
        }
        if self.calibration_alarm {
            alarms.push((AlarmKind::Calibration.label(), String::new()));
        }
        if self.ctr_alarm {
            alarms.push((AlarmKind::CtrDrop.label(), String::new()));
        }
        let status = if !self.config.enabled {
            "disabled"
        } else if reference.is_none() {
            "no reference"
        } else if !alarms.is_empty() {
            "alarm"
        } else if !judged {
            "warming up"
        } else {
            "ok"
        };
        MonitorReport {
            status,
            reference: reference.is_some(),
            requests: self.requests,
            windows_closed: self.closed,
            window_requests: self.config.window_requests,
            windows: self.config.windows,
            psi_threshold: self.config.psi_threshold(),
            base_ctr: reference.map(|r| r.base_ctr),
            features,
            outcomes: self.outcome_totals,
            observed_ctr: self.outcome_totals.observed_ctr(),
            predicted_ctr: self.outcome_totals.predicted_ctr(),
            alarms: alarms
                .into_iter()
                .map(|(kind, feature)| AlarmState { kind, feature })
                .collect(),
            alarms_raised: self.alarms_raised,
            transitions_dropped: self.transitions_dropped,
        }
    }
}

/// One feature's state in a [`MonitorReport`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FeatureState {
    /// Its name (`prediction` for the predictions).
    pub name: String,
    /// PSI of the ring's windows against the reference.
    pub psi: f64,
    /// `none`, `moderate` or `significant`.
    pub level: &'static str,
    /// Whether its alarm is up.
    pub alarm: bool,
    /// In `psi_ignore`: reported, never alarmed.
    pub ignored: bool,
}

/// An alarm that is up.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AlarmState {
    /// [`AlarmKind::label`].
    pub kind: &'static str,
    /// The feature, for PSI alarms (`""` otherwise).
    pub feature: String,
}

/// Everything the monitor knows now.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MonitorReport {
    /// `ok`, `alarm`, `warming up` (no window closed yet), `no reference`
    /// or `disabled`.
    pub status: &'static str,
    /// Whether the model records a reference.
    pub reference: bool,
    /// Requests observed.
    pub requests: u64,
    /// Windows closed.
    pub windows_closed: u64,
    /// Requests per window.
    pub window_requests: u32,
    /// Windows in the ring.
    pub windows: u32,
    /// The PSI that raises an alarm.
    pub psi_threshold: f64,
    /// The training base rate.
    pub base_ctr: Option<f64>,
    /// Each feature's PSI, then the predictions' (after a window closed).
    pub features: Vec<FeatureState>,
    /// Feedback outcomes in the ring's closed impression windows.
    pub outcomes: Outcomes,
    /// Their observed CTR.
    pub observed_ctr: f64,
    /// Their mean predicted CTR.
    pub predicted_ctr: f64,
    /// Alarms up now.
    pub alarms: Vec<AlarmState>,
    /// Alarms raised since start.
    pub alarms_raised: u64,
    /// Transitions dropped because the host did not take them.
    pub transitions_dropped: u64,
}
