//! Business rules over several workers: frequency caps and daily budgets
//! hold over all of a server's workers, not per worker.

mod common;

use common::*;
use cx_domain::store::budget::amount_micros;
use cx_server::config::ServerConfig;
use cx_wire::client::{Client, ResponseBody};
use std::collections::HashMap;

/// Impressions per user and offer allowed per window in the test catalog.
const CAP: u32 = 3;
/// Every offer's daily budget in the test catalog, in currency units: a
/// handful of the bundled catalog's bids (about 1-4 CPM, so 0.001-0.004
/// each), fewer than the caps allow (4 users x 3 impressions an offer).
const BUDGET: f64 = 0.01;

/// The bundled catalog with every offer capped at [`CAP`] impressions an
/// hour per user and given a daily budget of [`BUDGET`].
fn strict_catalog(dir: &std::path::Path) -> std::path::PathBuf {
    let bundled = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/catalog.toml"
    ))
    .expect("the bundled catalog");
    let mut text = String::new();
    for line in bundled.lines() {
        if line.starts_with("frequency_cap") || line.starts_with("daily_budget") {
            continue;
        }
        text.push_str(line);
        text.push('\n');
        if line.starts_with("id = ") {
            text.push_str(&format!(
                "frequency_cap = {{ impressions = {CAP}, window_s = 3600 }}\ndaily_budget = {BUDGET}\n"
            ));
        }
    }
    let path = dir.join("strict_catalog.toml");
    std::fs::write(&path, text).expect("writes the catalog");
    path
}

#[test]
fn caps_and_budgets_hold_over_two_workers() {
    let dir = temp_dir("rules");
    let catalog = strict_catalog(&dir);
    for io in io_modes() {
        let server = start(ServerConfig {
            workers: 2,
            catalog: Some(catalog.clone()),
            ..config(io)
        });
        // 16 connections, spread over both workers by SO_REUSEPORT, each
        // pipelining requests for the same 4 users.
        let mut clients: Vec<Client> = (0..16).map(|_| connect(&server)).collect();
        let mut shown: HashMap<(u32, u64), u32> = HashMap::new();
        let mut spent_micros: HashMap<u64, u64> = HashMap::new();
        let mut largest_bid_micros: HashMap<u64, u64> = HashMap::new();
        let mut decided = 0;
        for round in 0..20u32 {
            // Which user each request in flight is for, by connection and
            // request id.
            let mut users: HashMap<(usize, u64), u32> = HashMap::new();
            for (c, client) in clients.iter_mut().enumerate() {
                for k in 0..2u32 {
                    let user = (round + c as u32 + k) % 4;
                    let id = client.send_context(&context(user), false).expect("queues");
                    users.insert((c, id), user);
                }
                client.flush().expect("sends");
            }
            for (c, client) in clients.iter_mut().enumerate() {
                for _ in 0..2 {
                    let response = client.recv().expect("answered");
                    let user = users[&(c, response.request_id)];
                    let ResponseBody::Decision(decision) = response.body else {
                        panic!("{io:?}: expected a decision, got {:?}", response.body);
                    };
                    decided += 1;
                    let Some(top) = decision.imps[0].offers.first() else {
                        continue;
                    };
                    *shown.entry((user, top.offer_id)).or_default() += 1;
                    let micros = amount_micros(top.bid_cpm / 1000.0).expect("a valid bid");
                    *spent_micros.entry(top.offer_id).or_default() += micros;
                    let largest = largest_bid_micros.entry(top.offer_id).or_default();
                    *largest = (*largest).max(micros);
                }
            }
        }
        assert_eq!(decided, 20 * 16 * 2);
        let budget_micros = (BUDGET * 1e6) as u64;
        for (&(user, offer), &n) in &shown {
            assert!(
                n <= CAP,
                "{io:?}: user {user} was shown offer {offer} {n} times, cap {CAP}"
            );
        }
        for (&offer, &micros) in &spent_micros {
            assert!(
                micros <= budget_micros,
                "{io:?}: offer {offer} spent {micros} micros of a {budget_micros}-micro budget"
            );
        }
        assert!(
            shown.values().any(|&n| n == CAP),
            "{io:?}: the caps were reached, so they were tested: {shown:?}"
        );
        // Some offer came within one of its bids of its budget (it could
        // not have paid its largest bid again), so the budgets were tested too.
        assert!(
            spent_micros
                .iter()
                .any(|(offer, &m)| m + largest_bid_micros[offer] > budget_micros),
            "{io:?}: spent {spent_micros:?}, largest bids {largest_bid_micros:?}"
        );
        stop(server);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
