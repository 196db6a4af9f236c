//! State that survives restarts (`--state-dir`): a budget spent before a
//! SIGKILL stays spent after the restart, a corrupt state file stops the
//! start unless `--fresh-state` says to move it aside, and without a state
//! directory the start line says state is in memory only.

mod common;

use common::{signal, temp_dir, ServeProcess};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// One offer of the bundled model's whose every bid is its `max_bid_cpm`
/// (its value is far above it), 0.5 CPM, so its daily budget of 0.005 pays
/// exactly 10 bids.
const CATALOG: &str = r#"
[[offer]]
id = 1000
name = "Courses"
conversion_rate = 0.02
revenue = 100.0
max_bid_cpm = 0.5
daily_budget = 0.005
creative_id = "cr-1000"

[offer.creative]
click_url = "https://learn.example/go"
image_url = "https://cdn.learn.example/ad.jpg"
"#;

/// POSTs a bid request for user `user`; the HTTP status.
fn bid(http: SocketAddr, user: u32) -> u16 {
    let body = format!(
        r#"{{"id":"r{user}","imp":[{{"id":"1","banner":{{"w":300,"h":250}}}}],
            "site":{{"id":"s"}},"device":{{"devicetype":2,"geo":{{"country":"USA"}}}},
            "user":{{"id":"u{user}"}}}}"#
    );
    let mut stream = TcpStream::connect(http).expect("connects");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        stream,
        "POST /openrtb2/bid HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("writes");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A server that is killed if the test fails before stopping it.
struct Serving(ServeProcess);

impl Drop for Serving {
    fn drop(&mut self) {
        if matches!(self.0.child.try_wait(), Ok(None)) {
            let _ = self.0.child.kill();
            let _ = self.0.child.wait();
        }
    }
}

impl std::ops::Deref for Serving {
    type Target = ServeProcess;
    fn deref(&self) -> &ServeProcess {
        &self.0
    }
}

impl std::ops::DerefMut for Serving {
    fn deref_mut(&mut self) -> &mut ServeProcess {
        &mut self.0
    }
}

fn serve(dir: &Path, state: &Path, extra: &[&str]) -> Serving {
    let catalog = dir.join("catalog.toml");
    std::fs::write(&catalog, CATALOG).expect("writes the catalog");
    let mut args = vec![
        "--catalog",
        catalog.to_str().expect("utf-8"),
        "--state-dir",
        state.to_str().expect("utf-8"),
        "--state-interval-s",
        "1",
        "--workers",
        "2",
    ];
    args.extend_from_slice(extra);
    Serving(ServeProcess::spawn(
        &args,
        &dir.join(format!("serve-{}.log", extra.len())),
    ))
}

#[test]
fn a_spent_budget_stays_spent_after_sigkill() {
    let dir = temp_dir("state-kill");
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    let mut first = serve(&dir, &state, &[]);
    assert_eq!(first.started["state"]["mode"], "empty");
    let http = first.http.expect("http");
    // Six of the ten bids the budget pays (reserved by open bids: no
    // notices come).
    for user in 0..6 {
        assert_eq!(bid(http, user), 200, "bid {user}");
    }
    // Two intervals pass: the state file holds the spend.
    std::thread::sleep(Duration::from_millis(2_500));
    signal(first.pid, "KILL");
    let _ = first.child.wait();

    let mut second = serve(&dir, &state, &[]);
    assert_eq!(
        second.started["state"]["mode"], "restored",
        "{}",
        second.started
    );
    assert!(second.started["state"]["offers"].as_u64() >= Some(1));
    let http = second.http.expect("http");
    let after = (100..130).filter(|&user| bid(http, user) == 200).count();
    assert_eq!(
        after, 4,
        "the budget pays ten bids in all, across the restart"
    );
    signal(second.pid, "TERM");
    let _ = second.child.wait();
}

#[test]
fn a_corrupt_state_file_stops_the_start_unless_fresh_state_is_asked_for() {
    let dir = temp_dir("state-corrupt");
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(state.join("state.bin"), b"CXSTATE1 but then garbage").expect("writes");
    let catalog = dir.join("catalog.toml");
    std::fs::write(&catalog, CATALOG).expect("writes the catalog");
    let out = common::cx()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "",
            "--http-listen",
            "",
        ])
        .args(["--catalog", catalog.to_str().expect("utf-8")])
        .args(["--state-dir", state.to_str().expect("utf-8")])
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--fresh-state"), "{stderr}");
    assert!(
        state.join("state.bin").exists(),
        "the refused file is left alone"
    );

    let mut fresh = serve(&dir, &state, &["--fresh-state"]);
    assert_eq!(fresh.started["state"]["mode"], "fresh", "{}", fresh.started);
    assert!(state.join("state.bin.refused").exists());
    signal(fresh.pid, "TERM");
    let _ = fresh.child.wait();
    // A clean shutdown writes the state a last time.
    assert!(state.join("state.bin").exists());
}

#[test]
fn without_a_state_dir_the_start_line_says_memory_only() {
    let dir = temp_dir("state-none");
    let mut server = Serving(ServeProcess::spawn(&[], &dir.join("serve.log")));
    assert_eq!(server.started["state"]["mode"], "memory_only");
    signal(server.pid, "TERM");
    let _ = server.child.wait();
}
