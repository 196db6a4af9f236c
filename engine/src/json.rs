//! Decisions as JSON, for `cx score`, logs and tests.

use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{Decision, NoBidCause, ScoreSource, OBJECTIVES};
use serde_json::{json, Map, Value};

/// The label of a score source (`model`, `cache`, `fallback`, ...).
pub fn source_label(source: ScoreSource) -> &'static str {
    match source {
        ScoreSource::None => "none",
        ScoreSource::Cache => "cache",
        ScoreSource::Model => "model",
        ScoreSource::Fallback => "fallback",
        ScoreSource::Failed => "failed",
    }
}

/// A decision as a JSON object: the chosen offers best first, each with its
/// score, click probability, bid, explanation factors (which sum to the
/// score) and objective terms; or the no-offer cause; and how many offers
/// each rule excluded.
pub fn decision_json(decision: &Decision, catalog: &Catalog) -> Value {
    let offers: Vec<Value> = decision
        .offers()
        .iter()
        .map(|o| {
            let i = o.catalog_index as usize;
            let factors: Vec<Value> = o
                .explanation()
                .map(|f| json!({"kind": f.kind.name(), "contribution": f.contribution}))
                .collect();
            let objectives: Map<String, Value> = OBJECTIVES
                .iter()
                .zip(&o.objectives)
                .map(|(obj, &term)| (obj.name().to_string(), json!(term)))
                .collect();
            json!({
                "offer_id": o.offer_id,
                "name": catalog.name(i),
                "score": o.score,
                "p_click": o.p_click,
                "bid_cpm": o.bid_cpm,
                "factors": factors,
                "objectives": objectives,
            })
        })
        .collect();
    let excluded: Map<String, Value> = NoBidCause::ALL
        .iter()
        .filter(|c| decision.excluded[c.index()] > 0)
        .map(|c| (c.label().to_string(), json!(decision.excluded[c.index()])))
        .collect();
    json!({
        "ticket": decision.ticket.0,
        "source": source_label(decision.source),
        "simulated": decision.simulated,
        "eligible": decision.eligible,
        "offers": offers,
        "no_offer": decision.no_bid.map(NoBidCause::label),
        "excluded": excluded,
    })
}
