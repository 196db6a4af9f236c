//! The stores shared by a process's workers: caps exact and budgets never
//! overspent, from several threads at once.

use cx_domain::store::{
    BudgetBackend, BudgetBank, Budgets, FrequencyConfig, LeaseConfig, LeasedBudgets,
    SharedFrequency,
};
use std::sync::Arc;

const DAY_NS: u64 = 86_400 * 1_000_000_000;
const NOW: u64 = 20_000 * DAY_NS + 3_600 * 1_000_000_000;

fn bank(budget: f64) -> Arc<BudgetBank> {
    Arc::new(BudgetBank::new(&[Some(budget), None]).expect("a valid bank"))
}

fn leases(bank: &Arc<BudgetBank>) -> LeasedBudgets {
    LeasedBudgets::new(Arc::clone(bank), LeaseConfig::default()).expect("a valid config")
}

#[test]
fn two_threads_spending_one_budget_never_overspend_it() {
    let bank = bank(1.0); // 1 000 000 micros
    let spend_from = |bank: Arc<BudgetBank>| {
        std::thread::spawn(move || {
            let mut mine = leases(&bank);
            let mut spent = 0u64;
            for k in 0..100_000u64 {
                if mine.spend(0, 0.003, NOW + k).is_ok() {
                    spent += 3_000;
                }
            }
            (spent, mine)
        })
    };
    let a = spend_from(Arc::clone(&bank));
    let b = spend_from(Arc::clone(&bank));
    let (spent_a, mut a) = a.join().expect("thread a");
    let (spent_b, mut b) = b.join().expect("thread b");
    let spent = spent_a + spent_b;
    assert!(spent <= 1_000_000, "{spent_a} + {spent_b}: overspent");
    // The documented bound on underspend: when the bank is empty, each
    // worker may still hold an allowance too small for one more bid (less
    // than 3 000 micros), until it returns it. How much each holds depends
    // on how the threads interleaved (999 000 when one ends with it all).
    assert!(
        spent > 1_000_000 - 2 * 3_000,
        "{spent_a} + {spent_b}: underspent past the bound"
    );
    a.release_all(NOW);
    b.release_all(NOW);
    assert_eq!(
        bank.granted_micros(0, NOW),
        spent,
        "returned leases leave exactly what was spent granted"
    );
}

#[test]
fn an_idle_workers_lease_expires_back_to_the_bank() {
    let bank = bank(0.01); // 10 000 micros; leases of 1% = 100 micros
    let mut a = leases(&bank);
    let mut b = leases(&bank);
    a.spend(0, 0.000_05, NOW)
        .expect("a lease of 100 micros pays 50");
    assert_eq!(a.allowance_micros(0, NOW), 50);
    assert_eq!(bank.left_hint(0, NOW), Some(9_900));
    // b takes everything the bank has left...
    while b.spend(0, 0.000_1, NOW).is_ok() {}
    assert_eq!(bank.left_hint(0, NOW), Some(0));
    assert!(!b.can_spend(0, 0.000_05, NOW), "a's 50 micros are not b's");
    // ...until a's lease has been unused for its time to live.
    a.release_expired(NOW + 999_999_999);
    assert_eq!(bank.left_hint(0, NOW), Some(0), "not yet");
    a.release_expired(NOW + 1_000_000_000);
    assert_eq!(bank.left_hint(0, NOW), Some(50));
    assert!(b.can_spend(0, 0.000_05, NOW));
    b.spend(0, 0.000_05, NOW).expect("the returned 50 micros");
    assert_eq!(
        bank.granted_micros(0, NOW) - b.allowance_micros(0, NOW),
        10_000
    );
}

#[test]
fn a_dropped_worker_returns_its_allowance() {
    let bank = bank(0.01);
    let mut a = leases(&bank);
    a.spend(0, 0.000_01, NOW).expect("pays");
    assert_eq!(bank.granted_micros(0, NOW), 100);
    drop(a);
    assert_eq!(
        bank.granted_micros(0, NOW),
        10,
        "only what was spent stays granted"
    );
}

#[test]
fn a_new_day_starts_from_the_whole_budget_and_voids_old_allowances() {
    let bank = bank(0.001); // 1 000 micros
    let mut a = leases(&bank);
    while a.spend(0, 0.000_1, NOW).is_ok() {}
    assert!(!a.can_spend(0, 0.000_1, NOW));
    let tomorrow = NOW + DAY_NS;
    assert!(a.can_spend(0, 0.000_1, tomorrow));
    a.spend(0, 0.000_1, tomorrow).expect("a new day");
    a.release_all(tomorrow);
    assert_eq!(bank.granted_micros(0, tomorrow), 100);
    assert_eq!(a.spent_micros(0, tomorrow), 100);
}

#[test]
fn unlimited_offers_and_bad_amounts() {
    let bank = bank(1.0);
    let mut a = leases(&bank);
    for _ in 0..1_000 {
        a.spend(1, 1_000.0, NOW).expect("unlimited");
    }
    assert_eq!(
        bank.granted_micros(1, NOW),
        0,
        "nothing leased for an unlimited offer"
    );
    assert!(a.spend(0, f64::NAN, NOW).is_err());
    assert!(a.spend(0, -1.0, NOW).is_err());
    assert!(a.spend(5, 1.0, NOW).is_err(), "unknown offer");
    assert!(!a.can_spend(5, 0.0, NOW));
    assert_eq!(bank.granted_micros(0, NOW), 0, "refusals lease nothing");
}

#[test]
fn a_refund_through_the_pipelines_enum_goes_back_into_the_allowance() {
    let bank = bank(1.0);
    let mut backend = BudgetBackend::Leased(leases(&bank));
    backend.spend(0, 0.005, NOW).expect("pays");
    let BudgetBackend::Leased(held) = &backend else {
        unreachable!("built leased")
    };
    let before = held.allowance_micros(0, NOW);
    backend.refund(0, 0.005, NOW);
    assert_eq!(backend.spent(0, NOW), 0.0);
    let BudgetBackend::Leased(held) = &backend else {
        unreachable!("built leased")
    };
    assert_eq!(held.allowance_micros(0, NOW), before + 5_000);
}

#[test]
fn a_cap_holds_when_two_threads_record_for_one_user() {
    let store = SharedFrequency::new(FrequencyConfig { capacity: 1024 }).expect("a valid store");
    let record_from = |store: SharedFrequency| {
        std::thread::spawn(move || {
            (0..10_000u64)
                .filter(|&k| store.record_within(42, 7, Some(5), NOW + k, 3_600_000_000_000))
                .count()
        })
    };
    let a = record_from(store.clone());
    let b = record_from(store.clone());
    let recorded = a.join().expect("thread a") + b.join().expect("thread b");
    assert_eq!(recorded, 5, "exactly the cap, whoever recorded");
    assert_eq!(store.user_entries(42).count(7, NOW, 3_600_000_000_000), 5);
    assert_eq!(store.stats().records, 5);
}

#[test]
fn a_shared_store_checks_its_whole_capacity() {
    for capacity in [0, cx_domain::store::FREQUENCY_ENTRIES_MAX + 1] {
        let err = SharedFrequency::new(FrequencyConfig { capacity }).unwrap_err();
        assert!(
            err.to_string().contains(&format!("capacity {capacity}")),
            "{err}"
        );
    }
    SharedFrequency::new(FrequencyConfig { capacity: 1 }).expect("one entry is a valid size");
}

#[test]
fn a_refund_for_another_workers_spend_goes_back_to_the_bank() {
    // Worker a bids; the loss notice reaches worker b, which holds no
    // allowance for the offer today: the money still comes back.
    let bank = bank(0.01); // 10 000 micros
    let mut a = leases(&bank);
    let mut b = leases(&bank);
    a.spend(0, 0.000_05, NOW).expect("a pays 50 micros");
    a.release_all(NOW);
    assert_eq!(bank.granted_micros(0, NOW), 50);
    b.refund_micros(0, 50, NOW);
    assert_eq!(bank.granted_micros(0, NOW), 0, "the bank has it all again");
}
