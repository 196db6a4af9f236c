//! The synthetic click-log generator: determinism, the documented traffic
//! mixes, the ground-truth click model (CTR, oracle AUC, effect signs), the
//! Zipf user population, and config validation.
//!
//! Every test runs on fixed seeds, so a failure is a real change in the
//! stream, never flakiness. Tolerances are several standard errors wide but
//! well below the gap a broken sampler would open (documented per test).

use cx_datasets::synth::tables::{self, DeviceClass, COUNTRIES, DEVICES, SIZES};
use cx_datasets::synth::{limits, Os, SynthConfig, SynthRow};
use cx_datasets::{Error, Generator};
use std::collections::HashMap;

fn rows(config: SynthConfig, seed: u64, n: usize) -> Vec<SynthRow> {
    let mut generator = Generator::new(config, seed).expect("valid config");
    let mut out = Vec::new();
    generator.fill(&mut out, n).expect("n within the limit");
    out
}

/// A config whose rows are close to independent draws: uniform users and
/// publishers from large populations, so realized shares match the tables.
fn independent() -> SynthConfig {
    SynthConfig {
        users: 500_000,
        user_zipf_exponent: 0.0,
        publishers: 100_000,
        publisher_zipf_exponent: 0.0,
        ..SynthConfig::default()
    }
}

fn share(rows: &[&SynthRow], pred: impl Fn(&SynthRow) -> bool) -> f64 {
    rows.iter().filter(|r| pred(r)).count() as f64 / rows.len() as f64
}

fn class_of(row: &SynthRow) -> DeviceClass {
    DEVICES
        .iter()
        .find(|d| d.code == row.device_type)
        .expect("a documented device type")
        .class
}

fn region_offset_minutes(row: &SynthRow) -> i32 {
    let country = COUNTRIES
        .iter()
        .find(|c| c.code == row.country)
        .expect("a documented country");
    country
        .regions
        .iter()
        .find(|r| r.code == row.region)
        .expect("a region of that country")
        .utc_offset_minutes
}

/// Rank-based AUC (Mann-Whitney U), ties given their average rank.
fn auc(rows: &[SynthRow]) -> f64 {
    let mut scored: Vec<(f32, bool)> = rows.iter().map(|r| (r.p_true, r.click)).collect();
    scored.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut positives) = (0.0f64, 0usize);
    let mut i = 0;
    while i < scored.len() {
        let j = (i..scored.len())
            .find(|&j| scored[j].0 != scored[i].0)
            .unwrap_or(scored.len());
        let mean_rank = (i + 1 + j) as f64 / 2.0;
        for s in &scored[i..j] {
            if s.1 {
                rank_sum += mean_rank;
                positives += 1;
            }
        }
        i = j;
    }
    let negatives = scored.len() - positives;
    (rank_sum - (positives * (positives + 1)) as f64 / 2.0) / (positives as f64 * negatives as f64)
}

fn ctr(rows: &[SynthRow]) -> f64 {
    rows.iter().filter(|r| r.click).count() as f64 / rows.len() as f64
}

fn mean_p(rows: &[&SynthRow]) -> f64 {
    rows.iter().map(|r| f64::from(r.p_true)).sum::<f64>() / rows.len() as f64
}

// ---------------------------------------------------------------------------
// Determinism
// ---------------------------------------------------------------------------

#[test]
fn same_seed_and_config_give_identical_rows() {
    let a = rows(SynthConfig::default(), 42, 500);
    let b = rows(SynthConfig::default(), 42, 500);
    assert_eq!(a, b);
}

#[test]
fn row_at_fill_and_the_iterator_agree() {
    let mut generator = Generator::new(SynthConfig::default(), 9).unwrap();
    let sequential: Vec<SynthRow> = generator.by_ref().take(60).collect();
    assert_eq!(generator.position(), 60);
    for (i, row) in sequential.iter().enumerate() {
        assert_eq!(&generator.row_at(i as u64), row, "row {i}");
    }
    // Two fills make the same rows as one.
    generator.seek(0);
    let mut pieces = Vec::new();
    generator.fill(&mut pieces, 25).unwrap();
    generator.fill(&mut pieces, 35).unwrap();
    assert_eq!(pieces, sequential);
    // Seeking jumps straight to a row.
    generator.seek(41);
    assert_eq!(generator.next_row(), sequential[41]);
    // Threads may share one generator; its Debug form stays small.
    fn shareable<T: Send + Sync>(_: &T) {}
    shareable(&generator);
    let debug = format!("{generator:?}");
    assert!(
        debug.contains("position: 42") && debug.len() < 1000,
        "{debug}"
    );
}

#[test]
fn different_seeds_give_different_rows() {
    let a = rows(SynthConfig::default(), 42, 200);
    let b = rows(SynthConfig::default(), 43, 200);
    let same_user = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.user_id == y.user_id)
        .count();
    let same_p = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x.p_true == y.p_true)
        .count();
    assert!(same_user <= 2, "{same_user} of 200 rows share a user id");
    assert!(same_p <= 2, "{same_p} of 200 rows share p_true");
}

#[test]
fn the_stream_is_pinned_by_a_golden_digest() {
    // Changing the stream on purpose? Bump GENERATOR_VERSION and update this.
    use sha2::{Digest, Sha256};
    let mut csv = Vec::new();
    cx_datasets::synth::write_csv(&rows(SynthConfig::default(), 2024, 1000), &mut csv).unwrap();
    let digest: String = Sha256::digest(&csv)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(cx_datasets::synth::GENERATOR_VERSION, 1);
    assert_eq!(digest, GOLDEN_SHA256, "the row stream of seed 2024 changed");
}

const GOLDEN_SHA256: &str = "349d8a5d243821e29e5a5bacc39094f4564b2620ff82db7a4cd80b9396fd79ab";

// ---------------------------------------------------------------------------
// Documented mixes (20 000 near-independent rows)
// ---------------------------------------------------------------------------

#[test]
fn device_types_follow_the_table() {
    let rows = rows(independent(), 1, 20_000);
    let all: Vec<&SynthRow> = rows.iter().collect();
    for d in DEVICES {
        // SE <= 0.0035; a swapped or shifted table moves a share by >= 0.02.
        let got = share(&all, |r| r.device_type == d.code);
        assert!(
            (got - d.share).abs() < 0.015,
            "device {} ({}): {got} vs {}",
            d.code,
            d.name,
            d.share
        );
    }
}

#[test]
fn os_depends_on_the_device() {
    let rows = rows(independent(), 2, 20_000);
    let desktop: Vec<&SynthRow> = rows
        .iter()
        .filter(|r| class_of(r) == DeviceClass::Desktop)
        .collect();
    let mobile: Vec<&SynthRow> = rows
        .iter()
        .filter(|r| matches!(class_of(r), DeviceClass::Phone | DeviceClass::Tablet))
        .collect();
    let tv: Vec<&SynthRow> = rows
        .iter()
        .filter(|r| class_of(r) == DeviceClass::Tv)
        .collect();
    for (os, expected) in tables::DESKTOP_OS {
        let got = share(&desktop, |r| r.os == os);
        assert!(
            (got - expected).abs() < 0.03,
            "desktop {os}: {got} vs {expected}"
        );
    }
    assert_eq!(
        share(&mobile, |r| !matches!(
            r.os,
            Os::Android | Os::Ios | Os::Other
        )),
        0.0
    );
    assert_eq!(
        share(&tv, |r| !matches!(
            r.os,
            Os::Android | Os::Linux | Os::Other
        )),
        0.0
    );
    // ios share depends on the country: high in the USA and Japan, low in India.
    let ios = |code: &str| {
        let here: Vec<&SynthRow> = mobile
            .iter()
            .copied()
            .filter(|r| r.country == code)
            .collect();
        share(&here, |r| r.os == Os::Ios)
    };
    assert!((ios("USA") - 0.55).abs() < 0.05, "USA ios {}", ios("USA"));
    assert!(ios("IND") < 0.12, "IND ios {}", ios("IND"));
}

#[test]
fn connection_types_depend_on_the_device() {
    let rows = rows(independent(), 3, 20_000);
    for class in DeviceClass::ALL {
        let these: Vec<&SynthRow> = rows.iter().filter(|r| class_of(r) == class).collect();
        for (code, &expected) in tables::CONNECTION_SHARES[class.index()].iter().enumerate() {
            let got = share(&these, |r| usize::from(r.conn_type) == code);
            if expected == 0.0 {
                assert_eq!(got, 0.0, "{class:?} conn {code}");
            } else {
                assert!(
                    (got - expected).abs() < 0.04,
                    "{class:?} conn {code}: {got} vs {expected}"
                );
            }
        }
    }
}

#[test]
fn sizes_and_positions_depend_on_the_device_and_shape() {
    let rows = rows(independent(), 4, 20_000);
    for class in DeviceClass::ALL {
        let these: Vec<&SynthRow> = rows.iter().filter(|r| class_of(r) == class).collect();
        for s in SIZES {
            let expected = s.share[class.index()];
            let got = share(&these, |r| (r.width, r.height) == (s.width, s.height));
            if expected == 0.0 {
                assert_eq!(got, 0.0, "{class:?} {}x{}", s.width, s.height);
            } else {
                assert!(
                    (got - expected).abs() < 0.04,
                    "{class:?} {}x{}: {got} vs {expected}",
                    s.width,
                    s.height
                );
            }
        }
    }
    for row in &rows {
        let size = SIZES
            .iter()
            .find(|s| (s.width, s.height) == (row.width, row.height))
            .unwrap();
        let shares = tables::position_shares(size.shape);
        assert!(
            shares[usize::from(row.position)] > 0.0,
            "{size:?} at position {}",
            row.position
        );
    }
    let all: Vec<&SynthRow> = rows.iter().collect();
    // 300x250 is the most common size overall, as in real traffic.
    let medium_rectangle = share(&all, |r| (r.width, r.height) == (300, 250));
    assert!(medium_rectangle > 0.2, "{medium_rectangle}");
}

#[test]
fn countries_regions_and_local_hours_follow_the_tables() {
    let rows = rows(independent(), 5, 20_000);
    let all: Vec<&SynthRow> = rows.iter().collect();
    for c in COUNTRIES {
        let got = share(&all, |r| r.country == c.code);
        assert!(
            (got - c.share).abs() < 0.015,
            "{}: {got} vs {}",
            c.code,
            c.share
        );
    }
    let california = share(&all, |r| r.country == "USA" && r.region == "CA")
        / share(&all, |r| r.country == "USA");
    assert!(
        (california - 39.0 / 237.1).abs() < 0.03,
        "CA within USA: {california}"
    );

    let config = independent();
    let end = config.start_unix + config.span_seconds();
    let total: f64 = tables::HOUR_SHARES.iter().sum();
    let mut hours = [0usize; 24];
    for row in &rows {
        assert!(
            (config.start_unix..end).contains(&row.ts_unix),
            "{}",
            row.ts_unix
        );
        let local = row.ts_unix + i64::from(region_offset_minutes(row)) * 60;
        hours[(local.rem_euclid(86_400) / 3600) as usize] += 1;
    }
    for (h, &count) in hours.iter().enumerate() {
        // Uniform hours would give 0.042 each; the table runs from 0.007 to 0.074.
        let (got, expected) = (
            count as f64 / rows.len() as f64,
            tables::HOUR_SHARES[h] / total,
        );
        assert!(
            (got - expected).abs() < 0.008,
            "local hour {h}: {got} vs {expected}"
        );
    }
}

#[test]
fn a_start_that_is_not_midnight_keeps_local_hours() {
    let config = SynthConfig {
        start_unix: 1_700_000_000 + 12_345,
        span_days: 3,
        ..independent()
    };
    let rows = rows(config.clone(), 6, 5000);
    let night = rows
        .iter()
        .filter(|r| {
            let local = r.ts_unix + i64::from(region_offset_minutes(r)) * 60;
            (2..6).contains(&(local.rem_euclid(86_400) / 3600))
        })
        .count() as f64
        / rows.len() as f64;
    let expected: f64 =
        tables::HOUR_SHARES[2..6].iter().sum::<f64>() / tables::HOUR_SHARES.iter().sum::<f64>();
    assert!(
        (night - expected).abs() < 0.01,
        "share of local 2-5h: {night} vs {expected}"
    );
    let end = config.start_unix + config.span_seconds();
    assert!(rows
        .iter()
        .all(|r| (config.start_unix..end).contains(&r.ts_unix)));
}

#[test]
fn publishers_categories_and_floors_are_well_formed() {
    let rows = rows(independent(), 7, 20_000);
    let all: Vec<&SynthRow> = rows.iter().collect();
    let of = |class: DeviceClass| -> Vec<&SynthRow> {
        rows.iter().filter(|r| class_of(r) == class).collect()
    };
    assert_eq!(share(&of(DeviceClass::Desktop), |r| r.is_app), 0.0);
    assert_eq!(share(&of(DeviceClass::Tv), |r| r.is_app), 1.0);
    let phone_apps = share(&of(DeviceClass::Phone), |r| r.is_app);
    assert!(
        (phone_apps - tables::MOBILE_APP_PROB).abs() < 0.03,
        "{phone_apps}"
    );
    for row in &rows {
        let prefix = if row.is_app { "app-" } else { "site-" };
        assert!(
            row.site_or_app_id.starts_with(prefix),
            "{}",
            row.site_or_app_id
        );
        assert!(
            row.domain.contains('.')
                && row
                    .domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.')
        );
        assert!(
            (1..=3).contains(&row.categories.len()),
            "{:?}",
            row.categories
        );
        for cat in &row.categories {
            let code = cat.strip_prefix("IAB").expect("an IAB code");
            let (top, sub) = code.split_once('-').unwrap_or((code, ""));
            let spec = &tables::CATEGORIES[top.parse::<usize>().expect(cat) - 1];
            if !sub.is_empty() {
                let sub: u8 = sub.parse().expect(cat);
                assert!((1..=spec.subcategories).contains(&sub), "{cat}");
            }
        }
        assert!(
            !row.categories[0].contains('-'),
            "the primary is tier 1: {:?}",
            row.categories
        );
        assert!(
            row.bid_floor >= 0.01
                && (row.bid_floor * 100.0 - (row.bid_floor * 100.0).round()).abs() < 1e-6
        );
        assert!(
            (1..=4).contains(&row.segments.len()) && row.segments.windows(2).all(|w| w[0] < w[1])
        );
        assert!(row.segments.iter().all(|&s| s < 64));
    }
    // Primary categories follow the table (publishers are uniform here).
    for c in tables::CATEGORIES {
        let got = share(&all, |r| r.categories[0] == format!("IAB{}", c.code));
        assert!(
            (got - c.share).abs() < 0.012,
            "IAB{}: {got} vs {}",
            c.code,
            c.share
        );
    }
    // Floors: median USD CPM by device class; TV is an order of magnitude dearer.
    let median = |class: DeviceClass| {
        let mut f: Vec<f64> = rows
            .iter()
            .filter(|r| class_of(r) == class && r.country == "USA")
            .map(|r| r.bid_floor)
            .collect();
        f.sort_by(f64::total_cmp);
        f[f.len() / 2]
    };
    assert!(
        (median(DeviceClass::Desktop) - 0.80).abs() < 0.08,
        "{}",
        median(DeviceClass::Desktop)
    );
    assert!(
        (median(DeviceClass::Phone) - 0.45).abs() < 0.05,
        "{}",
        median(DeviceClass::Phone)
    );
    assert!(median(DeviceClass::Tv) > 8.0, "{}", median(DeviceClass::Tv));
}

#[test]
fn offers_follow_the_catalog_and_the_logging_policy() {
    let generator = Generator::new(SynthConfig::default(), 8).unwrap();
    let offers = generator.offers();
    assert_eq!(offers.len(), 16);
    let ids: Vec<u64> = offers.iter().map(|o| o.id).collect();
    assert_eq!(ids, (1000..1016).collect::<Vec<u64>>());
    assert!(offers.iter().all(|o| o.embedding.len() == 8));
    let rows = rows(SynthConfig::default(), 8, 20_000);
    let mut shown: HashMap<u64, usize> = HashMap::new();
    for row in &rows {
        *shown.entry(row.offer_id).or_default() += 1;
    }
    assert_eq!(shown.len(), 16, "every offer is shown: {shown:?}");
    // Popularity (i+1)^-0.6 makes the first offers far commoner than the last.
    let head: usize = (1000..1004).map(|id| shown[&id]).sum();
    let tail: usize = (1012..1016).map(|id| shown[&id]).sum();
    assert!(head > 2 * tail, "head {head}, tail {tail}");
    // Targeting: a desktop-only offer is shown mostly on desktops.
    for offer in offers
        .iter()
        .filter(|o| o.target == tables::OfferTarget::Desktop)
    {
        let on_desktop = rows
            .iter()
            .filter(|r| r.offer_id == offer.id && class_of(r) == DeviceClass::Desktop)
            .count();
        assert!(
            on_desktop * 2 > shown[&offer.id],
            "offer {}: {on_desktop} of {}",
            offer.id,
            shown[&offer.id]
        );
    }
}

// ---------------------------------------------------------------------------
// Ground truth
// ---------------------------------------------------------------------------

#[test]
fn click_rate_matches_the_configured_ctr() {
    for (target, tolerance) in [(0.05, 0.004), (0.12, 0.008)] {
        let config = SynthConfig {
            ctr: target,
            ..SynthConfig::default()
        };
        let rows = rows(config, 11, 50_000);
        let all: Vec<&SynthRow> = rows.iter().collect();
        let (clicks, p) = (ctr(&rows), mean_p(&all));
        println!("ctr {target}: empirical click rate {clicks:.4}, mean p_true {p:.4}");
        assert!(
            (p - target).abs() < tolerance,
            "mean p_true {p} vs {target}"
        );
        assert!(
            (clicks - target).abs() < tolerance,
            "click rate {clicks} vs {target}"
        );
    }
}

#[test]
fn the_true_probability_carries_signal() {
    let rows = rows(SynthConfig::default(), 12, 50_000);
    let oracle = auc(&rows);
    println!("oracle AUC over 50 000 rows: {oracle:.4}");
    assert!(oracle > 0.7, "oracle AUC {oracle}");
    assert!(rows.iter().all(|r| (0.0..=1.0).contains(&r.p_true)));
}

#[test]
fn signal_grows_with_the_scales() {
    let flat = SynthConfig {
        affinity_scale: 0.0,
        context_scale: 0.0,
        ..SynthConfig::default()
    };
    let strong = SynthConfig {
        affinity_scale: 2.0,
        ..SynthConfig::default()
    };
    let (flat, strong) = (auc(&rows(flat, 13, 30_000)), auc(&rows(strong, 13, 30_000)));
    // With no affinity and no context only the offer bias (sd 0.3) is left.
    assert!(flat < 0.6, "AUC without affinity or context {flat}");
    assert!(strong > 0.8, "AUC with affinity_scale 2: {strong}");
}

#[test]
fn observable_effects_have_the_documented_signs() {
    let generator = Generator::new(SynthConfig::default(), 14).unwrap();
    let category = |id: u64| {
        generator
            .offers()
            .iter()
            .find(|o| o.id == id)
            .unwrap()
            .category
    };
    let rows = rows(SynthConfig::default(), 14, 50_000);
    let matched = |r: &SynthRow| {
        r.categories
            .iter()
            .any(|c| c == &format!("IAB{}", category(r.offer_id)))
    };
    let (yes, no): (Vec<&SynthRow>, Vec<&SynthRow>) = rows.iter().partition(|r| matched(r));
    assert!(
        mean_p(&yes) > 1.3 * mean_p(&no),
        "category match {} vs {}",
        mean_p(&yes),
        mean_p(&no)
    );
    let at = |pos: u8| -> Vec<&SynthRow> { rows.iter().filter(|r| r.position == pos).collect() };
    assert!(
        mean_p(&at(7)) > mean_p(&at(1)) && mean_p(&at(1)) > mean_p(&at(3)),
        "full screen > above > below the fold"
    );
    let tv: Vec<&SynthRow> = rows
        .iter()
        .filter(|r| class_of(r) == DeviceClass::Tv)
        .collect();
    let phone: Vec<&SynthRow> = rows.iter().filter(|r| r.device_type == 4).collect();
    assert!(
        mean_p(&tv) < mean_p(&phone),
        "tv {} vs phone {}",
        mean_p(&tv),
        mean_p(&phone)
    );
    // Segments are observable and explain most of the user's affinity:
    // per (segment, offer) click rates spread far more than chance would.
    let mut cells: HashMap<(u32, u64), (f64, usize)> = HashMap::new();
    for row in &rows {
        for &s in &row.segments {
            let cell = cells.entry((s, row.offer_id)).or_default();
            cell.0 += f64::from(row.p_true);
            cell.1 += 1;
        }
    }
    let means: Vec<f64> = cells
        .values()
        .filter(|c| c.1 >= 200)
        .map(|c| c.0 / c.1 as f64)
        .collect();
    let (lo, hi) = means
        .iter()
        .fold((1.0f64, 0.0f64), |(lo, hi), &m| (lo.min(m), hi.max(m)));
    assert!(
        means.len() > 20 && hi > 3.0 * lo,
        "{} cells, mean p_true from {lo} to {hi}",
        means.len()
    );
}

// ---------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------

/// Share of rows made by the most active 1% of the population.
fn top_percent_share(config: SynthConfig) -> f64 {
    let users = config.users as usize;
    let rows = rows(config, 15, 50_000);
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for row in &rows {
        *counts.entry(row.user_id).or_default() += 1;
    }
    let mut counts: Vec<usize> = counts.into_values().collect();
    counts.sort_unstable_by(|a, b| b.cmp(a));
    counts.iter().take(users / 100).sum::<usize>() as f64 / rows.len() as f64
}

#[test]
fn zipf_users_concentrate_traffic_on_the_top_percent() {
    let config = SynthConfig {
        users: 10_000,
        ..SynthConfig::default()
    };
    let s = config.user_zipf_exponent;
    let weight = |n: usize| (1..=n).map(|k| (k as f64).powf(-s)).sum::<f64>();
    let expected = weight(100) / weight(10_000);
    let got = top_percent_share(config);
    println!("top 1% of users make {got:.3} of requests (Zipf law: {expected:.3})");
    assert!((got - expected).abs() < 0.03, "{got} vs {expected}");
    assert!(got > 10.0 * 0.01, "clearly disproportionate: {got}");
    let uniform = top_percent_share(SynthConfig {
        users: 10_000,
        user_zipf_exponent: 0.0,
        ..SynthConfig::default()
    });
    assert!(uniform < 0.03, "uniform users: top 1% make {uniform}");
}

#[test]
fn users_keep_their_traits_across_requests() {
    let rows = rows(
        SynthConfig {
            users: 500,
            ..SynthConfig::default()
        },
        16,
        5000,
    );
    let mut seen: HashMap<u64, &SynthRow> = HashMap::new();
    let mut at_home = 0usize;
    let mut repeats = 0usize;
    for row in &rows {
        if let Some(first) = seen.get(&row.user_id) {
            assert_eq!(
                first.segments, row.segments,
                "segments of user {}",
                row.user_id
            );
            if class_of(first) == class_of(row) {
                assert_eq!(first.os, row.os, "os of user {}", row.user_id);
            }
            repeats += 1;
            at_home += usize::from(first.country == row.country);
        } else {
            seen.insert(row.user_id, row);
        }
    }
    let home = at_home as f64 / repeats as f64;
    assert!(home > 0.93, "requests from the first-seen country: {home}");
    assert!(
        seen.len() > 400 && seen.len() <= 500,
        "{} distinct users",
        seen.len()
    );
}

// ---------------------------------------------------------------------------
// Config
// ---------------------------------------------------------------------------

#[test]
fn defaults_are_documented_values() {
    let c = SynthConfig::default();
    assert_eq!(
        (c.users, c.offers, c.embedding_dim, c.segments, c.span_days),
        (100_000, 16, 8, 64, 7)
    );
    assert_eq!(c.ctr, 0.05);
    assert_eq!(c.start_unix, 1_735_689_600);
    c.validate().unwrap();
}

#[test]
fn bad_settings_are_refused_naming_the_field() {
    let cases: Vec<(&str, SynthConfig)> = vec![
        (
            "users",
            SynthConfig {
                users: 0,
                ..Default::default()
            },
        ),
        (
            "users",
            SynthConfig {
                users: limits::USERS_MAX + 1,
                ..Default::default()
            },
        ),
        (
            "user_zipf_exponent",
            SynthConfig {
                user_zipf_exponent: f64::NAN,
                ..Default::default()
            },
        ),
        (
            "publishers",
            SynthConfig {
                publishers: 9,
                ..Default::default()
            },
        ),
        (
            "publisher_zipf_exponent",
            SynthConfig {
                publisher_zipf_exponent: -0.1,
                ..Default::default()
            },
        ),
        (
            "offers",
            SynthConfig {
                offers: 0,
                ..Default::default()
            },
        ),
        (
            "offers",
            SynthConfig {
                offers: limits::OFFERS_MAX + 1,
                ..Default::default()
            },
        ),
        (
            "segments",
            SynthConfig {
                segments: 0,
                ..Default::default()
            },
        ),
        (
            "embedding_dim",
            SynthConfig {
                embedding_dim: 65,
                ..Default::default()
            },
        ),
        (
            "ctr",
            SynthConfig {
                ctr: 0.0,
                ..Default::default()
            },
        ),
        (
            "ctr",
            SynthConfig {
                ctr: 0.6,
                ..Default::default()
            },
        ),
        (
            "affinity_scale",
            SynthConfig {
                affinity_scale: f64::INFINITY,
                ..Default::default()
            },
        ),
        (
            "segment_share",
            SynthConfig {
                segment_share: 1.5,
                ..Default::default()
            },
        ),
        (
            "context_scale",
            SynthConfig {
                context_scale: -1.0,
                ..Default::default()
            },
        ),
        (
            "span_days",
            SynthConfig {
                span_days: 0,
                ..Default::default()
            },
        ),
        (
            "start_unix",
            SynthConfig {
                start_unix: -1,
                ..Default::default()
            },
        ),
        (
            "start_unix",
            SynthConfig {
                start_unix: limits::END_UNIX_MAX,
                ..Default::default()
            },
        ),
    ];
    for (field, config) in cases {
        let err = Generator::new(config, 0).expect_err(field);
        let Error::SynthConfig { field: named, .. } = &err else {
            panic!("{field}: wrong variant {err:?}");
        };
        assert_eq!(*named, field);
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn configs_load_from_partial_json_and_refuse_unknown_keys() {
    let config: SynthConfig = serde_json::from_str(r#"{"users": 5000, "ctr": 0.1}"#).unwrap();
    assert_eq!(
        config,
        SynthConfig {
            users: 5000,
            ctr: 0.1,
            ..Default::default()
        }
    );
    let round_trip: SynthConfig =
        serde_json::from_str(&serde_json::to_string(&config).unwrap()).unwrap();
    assert_eq!(round_trip, config);
    let err = serde_json::from_str::<SynthConfig>(r#"{"user": 5000}"#).unwrap_err();
    assert!(err.to_string().contains("user"), "{err}");
}

#[test]
fn fill_refuses_more_than_the_per_call_limit() {
    let mut generator = Generator::new(
        SynthConfig {
            users: 100,
            ..Default::default()
        },
        0,
    )
    .unwrap();
    let mut out = Vec::new();
    let err = generator
        .fill(&mut out, limits::ROWS_PER_CALL_MAX + 1)
        .unwrap_err();
    assert!(
        matches!(err, Error::LimitExceeded { limit, .. } if limit == limits::ROWS_PER_CALL_MAX),
        "{err}"
    );
    assert!(out.is_empty());
    assert_eq!(generator.position(), 0);
}
