//! The load generator (`cx_load`) and `cx-bench load` against a
//! real server started in process (`cx_server::serve::Server`).
//!
//! This machine is shared and noisy, so nothing here asserts a latency or
//! a rate beyond loose structural facts: counts add up, percentiles are
//! ordered, reports round-trip through JSON, files get written, and bad
//! options are refused with the option named. The coordinated-omission
//! rule is checked on a manual clock, where time is exact.

use cx_load::plot::write_sweep_svg;
use cx_load::Clock as _;
use cx_load::{
    run, run_sweep, write_json, LoadConfig, LoadReport, ManualClock, Mix, Outcome, Pacer,
    Percentiles, Schedule, SweepConfig, SweepReport, Tally, DEPTH_MAX,
};
use cx_server::config::ServerConfig;
use cx_server::serve::Server;
use cx_wire::protocol::ErrorCode;
use std::path::{Path, PathBuf};

mod common;
use common::{cx_bench, path, scratch};

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A server on a loopback port, no admin endpoint.
fn start_server() -> Server {
    Server::start(ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        admin_listen: None,
        http_listen: None,
        ..ServerConfig::default()
    })
    .expect("the server starts")
}

fn stop(server: Server) {
    server.shutdown();
    server.wait().expect("the server stops cleanly");
}

/// A short, small load against `server`.
fn short_load(server: &Server) -> LoadConfig {
    LoadConfig {
        addr: server.local_addr().to_string(),
        rate_per_s: 2000.0,
        duration_s: 0.5,
        warmup_s: 0.1,
        drain_s: 5.0,
        connections: 2,
        depth: 32,
        pool: 512,
        ..LoadConfig::default()
    }
}

/// A sweep of three short steps (300, 540 and 900 requests/s) over one
/// connection against `server`.
fn short_sweep(server: &Server) -> SweepConfig {
    SweepConfig {
        load: LoadConfig {
            warmup_s: 0.05,
            connections: 1,
            ..short_load(server)
        },
        start_rate_per_s: 300.0,
        max_rate_per_s: 900.0,
        step_factor: 1.8,
        step_s: 0.2,
        ..SweepConfig::default()
    }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../components/wire/tests/fixtures/openrtb")
        .join(name)
}

fn assert_ordered(p: &Percentiles, what: &str) {
    let chain = [p.min_ns, p.p50_ns, p.p90_ns, p.p99_ns, p.p999_ns, p.max_ns];
    assert!(chain.windows(2).all(|w| w[0] <= w[1]), "{what}: {p:?}");
    if p.count > 0 {
        assert!(p.min_ns >= 1, "{what}: {p:?}");
    }
}

/// Every structural fact a report must satisfy.
fn check_report(report: &LoadReport) {
    let errors: u64 = report.overloaded + report.errors_by_code.values().sum::<u64>();
    assert_eq!(
        report.sent,
        report.ok + errors + report.unanswered,
        "sent = ok + errors + unanswered: {report:#?}"
    );
    assert_eq!(report.scheduled, report.sent + report.unsent, "{report:#?}");
    assert_eq!(report.errors(), errors);
    assert_eq!(report.latency_ok.count, report.ok);
    assert_eq!(report.latency_all.count, report.ok + errors);
    assert_ordered(&report.latency_ok, "latency_ok");
    assert_ordered(&report.latency_all, "latency_all");
    assert_ordered(&report.send_lag, "send_lag");
    assert!(
        report.latency_ok.p99_ns <= report.latency_all.max_ns,
        "{report:#?}"
    );
    let json = serde_json::to_string(report).expect("serialize");
    let back: LoadReport = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(&back, report, "the report round-trips through JSON");
}

// ---------------------------------------------------------------------------
// The schedule, on a manual clock
// ---------------------------------------------------------------------------

#[test]
fn a_late_send_counts_from_its_intended_time() {
    let clock = ManualClock::new();
    // 1000 requests per second on one connection: due at 0, 1, 2, ... ms.
    let schedule = Schedule::new(1000.0, 1, 0, 10_000_000);
    let mut pacer = Pacer::new(&schedule, 0, 1);
    let mut tally = Tally::new();

    assert_eq!(pacer.sendable(&schedule, clock.now_ns(), 0), 1);
    let first = pacer.take();
    // The server stalls for 5 ms: five more requests fall due, but the
    // depth (1) is used up, so none goes out and the sender waits.
    clock.advance_ns(5_000_000);
    assert_eq!(pacer.backlog(&schedule, clock.now_ns()), 5);
    assert_eq!(pacer.sendable(&schedule, clock.now_ns(), 1), 0);
    assert_eq!(
        pacer.next_wake_ns(&schedule, clock.now_ns()),
        Some(clock.now_ns()),
        "a backlog means: poll again now"
    );
    tally.record(
        schedule.intended_ns(0, first),
        clock.now_ns(),
        Outcome::Decision,
    );

    // Room again: the second request goes out 4 ms after it was due and
    // is answered 0.1 ms later. Its latency is 4.1 ms, not 0.1 ms.
    assert_eq!(pacer.sendable(&schedule, clock.now_ns(), 0), 1);
    let second = pacer.take();
    assert_eq!(schedule.intended_ns(0, second), 1_000_000);
    clock.advance_ns(100_000);
    tally.record(
        schedule.intended_ns(0, second),
        clock.now_ns(),
        Outcome::Error(ErrorCode::Overloaded),
    );

    let ok = Percentiles::of(&tally.latency_ok);
    let all = Percentiles::of(&tally.latency_all);
    assert_eq!((ok.count, all.count), (1, 2));
    // hdrhistogram keeps 3 significant digits.
    let near = |ns: u64, want: u64| ns.abs_diff(want) <= want / 500;
    assert!(near(ok.max_ns, 5_000_000), "{ok:?}");
    assert!(near(all.min_ns, 4_100_000), "{all:?}");
    assert_eq!((tally.ok, tally.overloaded, tally.errors()), (1, 1, 1));
    assert!(
        tally.errors_by_code.is_empty(),
        "overloaded is counted apart"
    );
}

#[test]
fn the_schedule_ends_with_the_window_and_skips_the_warmup() {
    // 4 connections at 1000/s: 100 ms of warm-up, then 200 ms measured.
    let schedule = Schedule::new(1000.0, 4, 100_000_000, 200_000_000);
    assert_eq!(schedule.measured_total(), 200);
    let mut sent = 0;
    for conn in 0..4 {
        let mut pacer = Pacer::new(&schedule, conn, 8);
        while pacer.sendable(&schedule, u64::MAX / 4, 0) > 0 {
            let k = pacer.take();
            assert!(schedule.intended_ns(conn, k) < schedule.end_ns());
            sent += 1;
        }
        assert!(pacer.is_done());
        assert_eq!(pacer.next_wake_ns(&schedule, 0), None);
        assert!(!schedule.is_measured(conn, schedule.warmup_count(conn) - 1));
        assert!(schedule.is_measured(conn, schedule.warmup_count(conn)));
    }
    assert_eq!(sent, 300, "warm-up and window, nothing after");
}

// ---------------------------------------------------------------------------
// Against a real server
// ---------------------------------------------------------------------------

#[test]
fn a_short_synthetic_load_adds_up() {
    let server = start_server();
    let config = short_load(&server);
    let report = run(&config).expect("the load runs");
    stop(server);

    check_report(&report);
    assert_eq!(report.scheduled, 1000, "0.5 s at 2000/s");
    assert!(report.ok > 0, "{report:#?}");
    assert!(report.connection_errors.is_empty(), "{report:#?}");
    assert_eq!(report.unattributed, 0);
    assert_eq!((report.connections, report.mix.as_str()), (2, "synth"));
    // Loose: the answers can come no faster than offered, and a debug
    // server on a shared machine still answers most of them.
    assert!(report.achieved_rate_per_s <= report.offered_rate_per_s * 1.001);
    assert!(
        report.achieved_rate_per_s >= report.offered_rate_per_s / 10.0,
        "{report:#?}"
    );
}

#[test]
fn replayed_openrtb_wrappers_are_decided() {
    let server = start_server();
    let config = LoadConfig {
        rate_per_s: 500.0,
        duration_s: 0.4,
        connections: 1,
        mix: Mix::OpenRtb(fixture("prebid_sample.jsonl")),
        ..short_load(&server)
    };
    let report = run(&config).expect("the load runs");
    stop(server);

    check_report(&report);
    assert_eq!(report.pool, 7, "one request per line of the sample");
    assert!(report.ok > 0, "{report:#?}");
    assert!(report.mix.ends_with("prebid_sample.jsonl"));
}

#[test]
fn the_echo_mix_measures_the_bare_loop_of_an_echo_server() {
    assert_eq!("echo".parse::<Mix>().expect("a mix"), Mix::Echo);
    assert_eq!(Mix::Echo.to_string(), "echo");
    let server = Server::start(ServerConfig {
        listen: "127.0.0.1:0".parse().expect("address"),
        admin_listen: None,
        http_listen: None,
        echo: true,
        ..ServerConfig::default()
    })
    .expect("the echo server starts");
    let config = LoadConfig {
        mix: Mix::Echo,
        ..short_load(&server)
    };
    let report = run(&config).expect("the load runs");
    check_report(&report);
    assert_eq!(report.mix, "echo");
    assert_eq!(report.scheduled, 1000, "0.5 s at 2000/s");
    // Every echoed pong is an answer to its own request: ok, nothing
    // unreadable, nothing unattributed.
    assert!(report.ok > 0, "{report:#?}");
    assert_eq!(report.errors(), 0, "{report:#?}");
    assert_eq!(report.unattributed, 0, "{report:#?}");
    assert!(report.connection_errors.is_empty(), "{report:#?}");

    // The same through the binary.
    let addr = server.local_addr().to_string();
    let (ok, stdout, stderr) = cx_bench(&[
        "load",
        "--addr",
        &addr,
        "--quiet",
        "--mix",
        "echo",
        "--rate",
        "1000",
        "--duration-s",
        "0.2",
        "--warmup-s",
        "0.05",
        "--connections",
        "1",
    ]);
    stop(server);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("mix echo"), "{stdout}");
}

#[test]
fn pongs_are_not_decisions_from_a_decision_server() {
    // A decision server does not echo: the echo mix against it must not
    // count anything as ok (without a hello, the server refuses it).
    let server = start_server();
    let config = LoadConfig {
        mix: Mix::Echo,
        duration_s: 0.2,
        drain_s: 1.0,
        ..short_load(&server)
    };
    let report = run(&config).expect("the load runs");
    stop(server);
    assert_eq!(report.ok, 0, "{report:#?}");
    assert_eq!(report.latency_ok.count, 0);
}

#[test]
fn a_sweep_writes_json_and_svg_and_compares_with_an_earlier_one() {
    let server = start_server();
    let dir = scratch("sweep");
    let config = SweepConfig {
        // Generous, so that a slow debug build still passes every step.
        slo_us: 10_000_000.0,
        failed_ratio_max: 1.0,
        ..short_sweep(&server)
    };
    assert_eq!(config.rates().expect("rates"), vec![300.0, 540.0, 900.0]);
    let mut seen = 0;
    let sweep = run_sweep(&config, |_| seen += 1).expect("the sweep runs");
    assert!((1..=3).contains(&sweep.steps.len()));
    assert_eq!(seen, sweep.steps.len());
    for step in &sweep.steps {
        check_report(&step.report);
    }
    let json = dir.join("sweep.json");
    write_json(&json, "--json", &sweep).expect("write the sweep");
    let back = SweepReport::read(&json, "--compare").expect("read it back");
    assert_eq!(back, sweep);

    let svg = dir.join("sweep.svg");
    write_sweep_svg(&svg, &sweep, None).expect("plot");
    let text = std::fs::read_to_string(&svg).expect("the plot exists");
    assert!(text.contains("<svg"), "{text}");
    let compared = dir.join("compared.svg");
    write_sweep_svg(&compared, &sweep, Some(("earlier.json", &back))).expect("plot both");
    let text = std::fs::read_to_string(&compared).expect("the plot exists");
    assert!(text.contains("<svg") && text.contains("earlier.json"));

    // The same through the binary, comparing with the sweep above.
    let addr = server.local_addr().to_string();
    let (cli_json, cli_svg) = (dir.join("cli.json"), dir.join("cli.svg"));
    let (ok, stdout, stderr) = cx_bench(&[
        "load",
        "--addr",
        &addr,
        "--quiet",
        "--connections",
        "1",
        "--warmup-s",
        "0.05",
        "--sweep",
        "--start-rate",
        "300",
        "--max-rate",
        "500",
        "--step-add",
        "200",
        "--step-s",
        "0.2",
        "--slo-us",
        "10000000",
        "--max-failed-ratio",
        "1",
        "--json",
        path(&cli_json),
        "--svg",
        path(&cli_svg),
        "--compare",
        path(&json),
    ]);
    stop(server);
    assert!(ok, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("offered"), "{stdout}");
    let cli_sweep = SweepReport::read(&cli_json, "--json").expect("the binary's sweep");
    assert!(!cli_sweep.steps.is_empty());
    let text = std::fs::read_to_string(&cli_svg).expect("the binary's plot");
    assert!(text.contains("<svg") && text.contains("sweep.json"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_sweep_goes_on_past_a_miss_when_asked() {
    let server = start_server();
    let config = SweepConfig {
        // Impossible: every step misses.
        slo_us: 0.001,
        stop_after_misses: 2,
        ..short_sweep(&server)
    };
    let sweep = run_sweep(&config, |_| {}).expect("the sweep runs");
    stop(server);
    // Two misses in a row end it (one, if the first step found the server
    // saturated; a slow debug build may).
    assert!((1..=2).contains(&sweep.steps.len()), "{sweep:#?}");
    assert!(sweep.steps.iter().all(|s| !s.within_slo));
    assert_eq!(sweep.best_rate_per_s, None);
}

// ---------------------------------------------------------------------------
// Bad options
// ---------------------------------------------------------------------------

fn refused(config: &LoadConfig) -> String {
    run(config).expect_err("refused").to_string()
}

#[test]
fn bad_options_are_refused_naming_the_option() {
    // Nothing listens here; every option is checked before connecting.
    let base = LoadConfig {
        addr: "127.0.0.1:9".into(),
        ..LoadConfig::default()
    };
    let cases: Vec<(LoadConfig, &str)> = vec![
        (
            LoadConfig {
                rate_per_s: 0.0,
                ..base.clone()
            },
            "--rate",
        ),
        (
            LoadConfig {
                rate_per_s: f64::NAN,
                ..base.clone()
            },
            "--rate",
        ),
        (
            LoadConfig {
                rate_per_s: 1e12,
                ..base.clone()
            },
            "--rate",
        ),
        (
            LoadConfig {
                depth: 0,
                ..base.clone()
            },
            "--depth",
        ),
        (
            LoadConfig {
                depth: DEPTH_MAX + 1,
                ..base.clone()
            },
            "--depth",
        ),
        (
            LoadConfig {
                connections: 0,
                ..base.clone()
            },
            "--connections",
        ),
        (
            LoadConfig {
                connections: 5000,
                ..base.clone()
            },
            "--connections",
        ),
        (
            LoadConfig {
                duration_s: 0.0,
                ..base.clone()
            },
            "--duration-s",
        ),
        (
            LoadConfig {
                warmup_s: -1.0,
                ..base.clone()
            },
            "--warmup-s",
        ),
        (
            LoadConfig {
                pool: 0,
                ..base.clone()
            },
            "--pool",
        ),
        (
            LoadConfig {
                mix: Mix::OpenRtb("/nonexistent/requests.jsonl".into()),
                ..base.clone()
            },
            "--mix",
        ),
    ];
    for (config, option) in cases {
        let message = refused(&config);
        assert!(message.starts_with(option), "{option}: {message}");
    }
    let message = refused(&LoadConfig {
        depth: 2000,
        ..base.clone()
    });
    assert!(message.contains("1024"), "the limit is stated: {message}");
    // A file that is there but holds no request names the option too.
    let dir = scratch("bad-mix");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "\n\n").expect("write");
    let message = refused(&LoadConfig {
        mix: Mix::OpenRtb(empty),
        ..base.clone()
    });
    assert!(
        message.starts_with("--mix") && message.contains("no requests"),
        "{message}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    // With good options, the unreachable server is named.
    let message = refused(&base);
    assert!(message.contains("127.0.0.1:9"), "{message}");
}

#[test]
fn bad_sweep_options_are_refused_naming_the_option() {
    let sweep = SweepConfig::default();
    let cases: Vec<(SweepConfig, &str)> = vec![
        (
            SweepConfig {
                stop_after_misses: 0,
                ..sweep.clone()
            },
            "--stop-after-misses",
        ),
        (
            SweepConfig {
                step_factor: 1.0,
                ..sweep.clone()
            },
            "--step-factor",
        ),
        (
            SweepConfig {
                step_factor: 1.001,
                ..sweep.clone()
            },
            "--step-factor",
        ),
        (
            SweepConfig {
                step_add_per_s: Some(-5.0),
                ..sweep.clone()
            },
            "--step-add",
        ),
        (
            SweepConfig {
                start_rate_per_s: 0.0,
                ..sweep.clone()
            },
            "--start-rate",
        ),
        (
            SweepConfig {
                max_rate_per_s: 5.0,
                ..sweep.clone()
            },
            "--max-rate",
        ),
        (
            SweepConfig {
                slo_us: 0.0,
                ..sweep.clone()
            },
            "--slo-us",
        ),
        (
            SweepConfig {
                step_s: 0.0,
                ..sweep.clone()
            },
            "--step-s",
        ),
        (
            SweepConfig {
                failed_ratio_max: 2.0,
                ..sweep.clone()
            },
            "--max-failed-ratio",
        ),
    ];
    for (config, option) in cases {
        let message = run_sweep(&config, |_| {}).expect_err("refused").to_string();
        assert!(message.starts_with(option), "{option}: {message}");
    }
    let missing = Path::new("/nonexistent/earlier.json");
    let message = SweepReport::read(missing, "--compare")
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("--compare"), "{message}");
}

#[test]
fn the_binary_refuses_bad_options_naming_them() {
    let cases: [(&[&str], &str); 4] = [
        (&["load", "--addr", "127.0.0.1:9", "--rate", "0"], "--rate"),
        (
            &["load", "--addr", "127.0.0.1:9", "--depth", "0"],
            "--depth",
        ),
        (
            &[
                "load",
                "--addr",
                "127.0.0.1:9",
                "--mix",
                "/nonexistent.jsonl",
            ],
            "--mix",
        ),
        (
            &[
                "load",
                "--addr",
                "127.0.0.1:9",
                "--sweep",
                "--svg",
                "/tmp/x.svg",
                "--compare",
                "/nonexistent.json",
            ],
            "--compare",
        ),
    ];
    for (args, option) in cases {
        let (ok, _, stderr) = cx_bench(args);
        assert!(!ok, "{args:?} is refused");
        assert!(stderr.contains(option), "{args:?}: {stderr}");
    }
    // Sweep-only flags need --sweep (clap says which).
    let (ok, _, stderr) = cx_bench(&["load", "--addr", "127.0.0.1:9", "--max-failed-ratio", "0.5"]);
    assert!(!ok && stderr.contains("--sweep"), "{stderr}");
}
