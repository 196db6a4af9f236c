//! Learned bid shading: an auction bid's price chosen from the placement's
//! learnt win rates (`cx_domain::store::win_rates`) to maximise the
//! expected surplus `(value - bid) * P(win | bid)`, with a small share of
//! bids at a random price so the curve sees prices it would not try (only
//! on placements whose notices come back: a host without notices, such as
//! `cx score`, always gets the static price until it has enough).
//! Ranking never depends on the price, so the first offer is repriced after
//! ranking and before its budget is charged.

use crate::config::DecideConfig;
use cx_domain::catalog::Catalog;
use cx_domain::pipeline::{Decision, Ticket};
use cx_domain::store::win_rates::{bucket_center_cpm, PRICE_BUCKETS};
use cx_domain::store::{mix64, shaded_bid, WinRateBackend};
use cx_features::RequestContext;

/// Salt of the price-exploration draws (ASCII "pricing").
const PRICE_STREAM: u64 = 0x0070_7269_6369_6e67;

/// A uniform draw in `[0, 1)` fixed by the seed, the ticket and the offer.
fn uniform(seed: u64, ticket: Ticket, offer_id: u64) -> f64 {
    let h = mix64(mix64(mix64(seed) ^ ticket.0) ^ offer_id);
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// The key of the placement a request is for: its site or app id and slot
/// size; 0 (no learning) without a site or app id.
pub fn placement_key(ctx: &RequestContext) -> u64 {
    if ctx.site_id.is_empty() {
        return 0;
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(ctx.site_id.as_bytes());
    h.update(&ctx.placement_width.to_le_bytes());
    h.update(&ctx.placement_height.to_le_bytes());
    h.digest().max(1)
}

/// How the first offer's price was set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priced {
    /// The static rule (learned shading off, no curve yet, or no better bid).
    Static,
    /// From the placement's win curve.
    Learned,
    /// A random price bucket (price exploration).
    Explored,
}

/// Reprices the decision's first offer for an auction on `placement`, as
/// the [module docs](self) say. `floor_cpm` is the request's floor.
pub fn shade_first(
    decision: &mut Decision,
    catalog: &Catalog,
    rates: &WinRateBackend,
    config: &DecideConfig,
    (placement, floor_cpm): (u64, f64),
    (seed, ticket): (u64, Ticket),
) -> Priced {
    let Some(top) = decision.offers().first().copied() else {
        return Priced::Static;
    };
    if !config.learned_shading || placement == 0 {
        return Priced::Static;
    }
    let i = top.catalog_index as usize;
    let o = catalog.objectives();
    let value_cpm =
        1000.0 * f64::from(top.p_click) * f64::from(o.conversion_rate[i]) * f64::from(o.revenue[i]);
    let cap = f64::from(catalog.max_bid_cpm()[i]).min(value_cpm);
    let floor = if floor_cpm.is_finite() && floor_cpm > 0.0 {
        floor_cpm
    } else {
        0.0
    };
    // Prices are explored only where notices come back (a placement with
    // bids observed): without them exploring teaches nothing.
    let (bids, curve) = rates.read(placement, |r| (r.bids(placement), r.curve(placement)));
    let learning = bids > 0;
    if learning && uniform(seed ^ PRICE_STREAM, ticket, top.offer_id) < config.price_exploration {
        let edges = (0..PRICE_BUCKETS)
            .map(bucket_center_cpm)
            .filter(|&b| b >= floor && b <= cap);
        let n = edges.clone().count();
        if n > 0 {
            let pick = uniform(seed ^ PRICE_STREAM ^ 1, ticket, top.offer_id);
            let k = ((pick * n as f64) as usize).min(n - 1);
            if let Some(bid) = edges.clone().nth(k) {
                decision.reprice_first(bid);
                return Priced::Explored;
            }
        }
    }
    match curve.and_then(|curve| shaded_bid(&curve, value_cpm, floor, cap)) {
        Some(bid) if bid > 0.0 => {
            decision.reprice_first(bid);
            Priced::Learned
        }
        _ => Priced::Static,
    }
}
