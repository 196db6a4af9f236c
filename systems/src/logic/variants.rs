//! Choosing an offer's creative variant: Thompson sampling on each
//! variant's own click rate. Each variant has a Beta(1 + clicks,
//! 1 + impressions - clicks) posterior (a uniform prior; the variants of
//! one offer share its model score, so only their own clicks tell them
//! apart); one draw each, and the highest draw is shown. An offer with one
//! variant draws nothing. Deterministic given the seed, the ticket and the
//! counts, like the offers' own draws.

use cx_domain::pipeline::Ticket;
use cx_domain::store::{mix64, VariantStats};
use rand::SeedableRng;
use rand_distr::{Beta, Distribution};
use rand_pcg::Pcg64Mcg;

/// Salt of the variant draws' stream (ASCII "variants").
const VARIANT_STREAM: u64 = 0x7661_7269_616e_7473;

/// The variant of offer `offer` (catalog index, id `offer_id`, with
/// `count` variants) to show for the request `ticket` at `now_ns`.
pub fn choose_variant(
    stats: &VariantStats,
    offer: usize,
    offer_id: u64,
    count: usize,
    seed: u64,
    ticket: Ticket,
    now_ns: u64,
) -> u8 {
    if count <= 1 {
        return 0;
    }
    let stream = mix64(mix64(mix64(seed ^ VARIANT_STREAM) ^ ticket.0) ^ offer_id);
    let mut rng = Pcg64Mcg::seed_from_u64(stream);
    let mut best = (0u8, f64::NEG_INFINITY);
    for v in 0..count.min(usize::from(u8::MAX)) {
        let (n, s) = stats.counts(offer, offer_id, v, now_ns);
        let draw = Beta::new(1.0 + s, 1.0 + (n - s).max(0.0))
            .map(|b| b.sample(&mut rng))
            .unwrap_or(0.0);
        if draw > best.1 {
            best = (v as u8, draw);
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use cx_domain::catalog::Catalog;

    const CATALOG: &str = r#"
[[offer]]
id = 7
name = "Shoes"
conversion_rate = 0.1
revenue = 1.0
max_bid_cpm = 2.0
creative_id = "cr-7"

[offer.creative]
click_url = "https://shoes.example/go"
title = "Shoes"

[[offer.variants]]
creative_id = "cr-7-b"
title = "Shoes, half price"

[[offer.variants]]
creative_id = "cr-7-c"
title = "Shoes for runners"
"#;

    #[test]
    fn a_variant_clicked_twice_as_often_wins_most_draws_and_choices_repeat() {
        let catalog = Catalog::from_toml_str(CATALOG).expect("valid");
        let mut stats = VariantStats::new(&catalog, 0.0);
        // 3,000 impressions each; variant 1 gets 10% clicks, the others 5%.
        for k in 0..3_000u64 {
            for v in 0..3 {
                stats.observe_impression(0, v, k);
                let rate = if v == 1 { 10 } else { 20 };
                if k % rate == 0 {
                    stats.observe_click(0, v, k);
                }
            }
        }
        let picks: Vec<u8> = (0..1_000)
            .map(|t| choose_variant(&stats, 0, 7, 3, 9, Ticket(t), 3_000))
            .collect();
        let best = picks.iter().filter(|&&v| v == 1).count();
        assert!(
            best > 950,
            "{best} of 1000 picks went to the better variant"
        );
        let again = choose_variant(&stats, 0, 7, 3, 9, Ticket(5), 3_000);
        assert_eq!(again, picks[5], "deterministic");
        // With no data, every variant gets picked.
        let fresh = VariantStats::new(&catalog, 0.0);
        let mut seen = [false; 3];
        for t in 0..200 {
            seen[usize::from(choose_variant(&fresh, 0, 7, 3, 1, Ticket(t), 0))] = true;
        }
        assert_eq!(seen, [true; 3]);
        assert_eq!(choose_variant(&fresh, 0, 7, 1, 1, Ticket(1), 0), 0);
    }

    #[test]
    fn counts_follow_their_offer_to_another_catalog_and_clicks_stay_below_impressions() {
        let catalog = Catalog::from_toml_str(CATALOG).expect("valid");
        let mut stats = VariantStats::new(&catalog, 0.0);
        stats.observe_click(0, 2, 1);
        assert_eq!(
            stats.counts(0, 7, 2, 1),
            (0.0, 0.0),
            "no impression to click"
        );
        stats.observe_impression(0, 2, 1);
        stats.observe_click(0, 2, 2);
        assert_eq!(stats.counts(0, 7, 2, 2), (1.0, 1.0));
        assert!(!stats.observe_impression(0, 3, 2), "no fourth variant");
        let carried = stats.carried_to(&catalog);
        assert_eq!(carried.counts(0, 7, 2, 2), (1.0, 1.0));
        assert_eq!(
            carried.counts(0, 8, 2, 2),
            (0.0, 0.0),
            "another offer there"
        );
        assert!(carried.fits(&catalog));
    }
}
