//! Pricing with the bundled model and catalog over many varied synthetic
//! requests: every bid is at least its floor and at most its offer's cap,
//! bids are spread out (not all at the cap), they land in the CPM range
//! the catalog is set for, and the bid shading moves them.

use cx_engine::datasets::{Generator, SynthConfig, SynthRow};
use cx_engine::features::{DeviceType, RequestContext};
use cx_engine::{Engine, EngineConfig};

const T0_NS: u64 = 1_767_225_600_000_000_000;
const ROWS: usize = 3000;

fn context_of(row: &SynthRow) -> RequestContext {
    RequestContext {
        user_id: row.user_id.to_string(),
        user_segments: row.segments.iter().map(u32::to_string).collect(),
        device_type: DeviceType::from_openrtb(i64::from(row.device_type)),
        country: row.country.clone(),
        region: row.region.clone(),
        site_id: row.site_or_app_id.clone(),
        is_app: row.is_app,
        domain: row.domain.clone(),
        categories: row.categories.clone(),
        placement_width: u32::from(row.width),
        placement_height: u32::from(row.height),
        bid_floor: row.bid_floor,
        timestamp: row.ts_unix,
        ..RequestContext::default()
    }
}

/// One bid: its price, its request's floor and its offer's cap.
struct Priced {
    bid: f64,
    floor: f64,
    cap: f64,
}

/// Decides `ROWS` synthetic requests (simulated, so that no cap or budget
/// shapes the result) with `shading`; the bids of those that get an offer.
fn bids(shading: f64) -> Vec<Priced> {
    let mut config = EngineConfig::default();
    config.decide.bid_shading = shading;
    let mut engine = Engine::builder().config(config).seed(1).build().unwrap();
    let mut generator = Generator::new(SynthConfig::default(), 2024).unwrap();
    let mut rows = Vec::new();
    generator.fill(&mut rows, ROWS).unwrap();
    let mut out = Vec::new();
    for (k, row) in rows.iter().enumerate() {
        engine.submit_simulated(context_of(row)).unwrap();
        engine.run_until_decided(T0_NS + k as u64);
        let decision = engine.poll().expect("decided");
        if let Some(offer) = decision.offers().first() {
            let cap = f64::from(engine.catalog().max_bid_cpm()[offer.catalog_index as usize]);
            out.push(Priced {
                bid: offer.bid_cpm,
                floor: row.bid_floor,
                cap,
            });
        }
    }
    out
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[test]
fn bundled_bids_are_varied_within_floor_and_cap() {
    let priced = bids(0.5);
    assert!(
        priced.len() > ROWS * 8 / 10,
        "{} of {ROWS} bid",
        priced.len()
    );
    for p in &priced {
        assert!(p.bid >= p.floor, "{} under the floor {}", p.bid, p.floor);
        assert!(p.bid <= p.cap, "{} over the cap {}", p.bid, p.cap);
    }
    let at_cap = priced.iter().filter(|p| p.bid == p.cap).count();
    let at_floor = priced.iter().filter(|p| p.bid == p.floor).count();
    let mut prices: Vec<f64> = priced.iter().map(|p| p.bid).collect();
    prices.sort_by(f64::total_cmp);
    let distinct = prices.windows(2).filter(|w| w[0] != w[1]).count() + 1;
    let (p10, p50, p90) = (
        quantile(&prices, 0.1),
        quantile(&prices, 0.5),
        quantile(&prices, 0.9),
    );
    eprintln!(
        "{} bids: p10 {p10:.3} median {p50:.3} p90 {p90:.3} min {:.3} max {:.3} CPM; \
         {at_cap} at the cap, {at_floor} at the floor, {distinct} distinct prices",
        prices.len(),
        prices[0],
        prices[prices.len() - 1],
    );
    assert!(at_cap * 20 < priced.len(), "{at_cap} bids at the cap");
    assert!(at_floor * 20 < priced.len(), "{at_floor} bids at the floor");
    assert!(distinct * 2 > priced.len(), "{distinct} distinct prices");
    assert!((0.5..=10.0).contains(&p50), "median bid {p50}");
    assert!(p10 >= 0.2 && p90 <= 10.0, "p10 {p10}, p90 {p90}");
    assert!(p90 > 2.0 * p10, "spread p10 {p10} .. p90 {p90}");
}

#[test]
fn shading_moves_the_bids() {
    let half = bids(0.5);
    let full = bids(1.0);
    let mean = |v: &[Priced]| v.iter().map(|p| p.bid).sum::<f64>() / v.len() as f64;
    let (m_half, m_full) = (mean(&half), mean(&full));
    eprintln!("mean bid: shading 0.5 {m_half:.3}, shading 1.0 {m_full:.3} CPM");
    // With shading 1 a bid is the offer's value (capped); halfway to it
    // from the floor is clearly less.
    assert!(m_full > 1.3 * m_half, "{m_full} vs {m_half}");
    let full_at_cap = full.iter().filter(|p| p.bid == p.cap).count();
    assert!(
        full_at_cap * 4 < full.len(),
        "{full_at_cap} at the cap unshaded"
    );
}
