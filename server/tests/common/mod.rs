//! Helpers shared by the server's end-to-end tests: starting a server on
//! an ephemeral port per event loop, connecting, requests, and reading
//! metrics.
#![allow(dead_code)] // each test file uses its own subset

use cx_features::{DeviceType, RequestContext};
use cx_server::config::{IoMode, ServerConfig};
use cx_server::serve::Server;
use cx_wire::client::{Client, Response, ResponseBody};
use cx_wire::protocol::{self, ErrorCode};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io::{BufRead, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

pub const FIXTURE: &str = "../components/wire/tests/fixtures/openrtb/2.5_mobile.json";

pub fn fixture() -> Vec<u8> {
    std::fs::read(FIXTURE).expect("the OpenRTB fixture exists")
}

/// The event loops this machine can run: epoll always, io_uring when the
/// probe passes (the tests say so when it does not).
pub fn io_modes() -> Vec<IoMode> {
    match cx_server::uring::probe() {
        Ok(()) => vec![IoMode::Epoll, IoMode::Uring],
        Err(e) => {
            eprintln!(
                "io_uring unavailable here, testing epoll only: {}",
                cx_server::error::render_chain(&e)
            );
            vec![IoMode::Epoll]
        }
    }
}

/// A server on ephemeral ports. Without a default request deadline: the
/// tests of other behaviour run a debug build on a loaded machine, where
/// a batch can take longer than the default 250 ms and answer `timeout`;
/// the deadline tests set their own.
pub fn config(io: IoMode) -> ServerConfig {
    ServerConfig {
        deadline_default_ms: 0,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        http_listen: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        io,
        ..ServerConfig::default()
    }
}

pub fn start(config: ServerConfig) -> Server {
    let io = config.io;
    let server = Server::start(config).expect("the server starts");
    assert_eq!(server.io(), io, "the server runs the loop asked for");
    server
}

pub fn connect(server: &Server) -> Client {
    let mut client = Client::connect(server.local_addr()).expect("connects");
    client
        .set_timeout(Some(Duration::from_secs(10)))
        .expect("sets a timeout");
    client
}

pub fn context(i: u32) -> RequestContext {
    RequestContext {
        device_type: DeviceType::from_openrtb(4),
        country: "USA".into(),
        placement_width: 300,
        placement_height: 250,
        user_id: format!("user-{i}"),
        ..RequestContext::default()
    }
}

pub fn stop(server: Server) {
    server.shutdown();
    server.wait().expect("the workers stop cleanly");
}

/// Reads until the server closes the connection; returns the bytes read.
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("sets a timeout");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("the server neither answered nor closed: {e}"),
        }
    }
}

/// The `error` frames in `bytes`: (request id, code).
pub fn error_frames(bytes: &[u8]) -> Vec<(u64, ErrorCode)> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let protocol::Decoded::Frame {
        header,
        payload,
        consumed,
    } = protocol::decode_frame(rest)
    {
        if let Ok(e) = protocol::decode_error(payload) {
            out.push((header.request_id, e.code));
        }
        rest = &rest[consumed..];
    }
    out
}

pub fn expect_decision(response: &Response) -> &cx_wire::protocol::DecisionResponse {
    match &response.body {
        ResponseBody::Decision(d) => d,
        other => panic!("expected a decision, got {other:?}"),
    }
}

pub fn scrape(server: &Server, path: &str) -> (u16, String) {
    let addr = server.admin_addr().expect("the admin endpoint runs");
    let mut stream = TcpStream::connect(addr).expect("connects to the admin port");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut text = String::new();
    stream
        .read_to_string(&mut text)
        .expect("reads the response");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("an HTTP status line");
    (status, text)
}

/// The value of the sample `name` (exact, labels included) in metrics text.
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
}

/// The `cx` binary of this build.
pub fn cx() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_cx"))
}

/// Sends signal `name` (`TERM`, `HUP`, ...) to process `pid`.
pub fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("runs kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A TCP connection to the server from the loopback address `source`
/// (any 127.x.y.z works on Linux), so tests can play several hosts; with
/// `recv_buffer_bytes`, a receive buffer that small.
pub fn loopback_socket(
    source: Ipv4Addr,
    recv_buffer_bytes: Option<usize>,
    server: SocketAddr,
) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).expect("socket");
    if let Some(bytes) = recv_buffer_bytes {
        socket.set_recv_buffer_size(bytes).expect("sets SO_RCVBUF");
    }
    let local = SockAddr::from(SocketAddr::from((source, 0)));
    socket.bind(&local).expect("binds the source address");
    socket
        .connect(&SockAddr::from(server))
        .expect("the kernel accepts");
    socket.into()
}

/// A bid request with `imps` banner impressions.
pub fn wide_bid_request(imps: usize) -> Vec<u8> {
    let imp: Vec<serde_json::Value> = (0..imps)
        .map(|i| serde_json::json!({"id": format!("imp-{i}"), "banner": {"w": 300, "h": 250}, "bidfloor": 0.1}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "id": "wide", "imp": imp, "site": {"id": "s", "domain": "example.com"},
        "device": {"devicetype": 4, "geo": {"country": "USA"}}, "user": {"id": "u"}
    }))
    .expect("json")
}

/// A connection from loopback that never reads, with a small receive
/// buffer so the kernel holds little of what the server sends it.
pub fn non_reader(server: SocketAddr) -> TcpStream {
    loopback_socket(Ipv4Addr::LOCALHOST, Some(4096), server)
}

/// The process's resident set, MiB.
pub fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

/// `GET path` on the admin port; the body.
pub fn admin_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connects to the admin port");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// A `cx serve` process on ephemeral ports, started with `args` after
/// the listen addresses, logging at debug to `log`.
pub struct ServeProcess {
    pub child: std::process::Child,
    pub pid: u32,
    /// The binary protocol's address.
    pub addr: SocketAddr,
    /// The admin (metrics) address, unless `--admin-listen ""` turned it
    /// off.
    pub admin: Option<SocketAddr>,
    /// The HTTP bidder's address, unless `--http-listen ""` turned it off.
    pub http: Option<SocketAddr>,
    /// The JSON line it printed when it started listening.
    pub started: serde_json::Value,
}

impl ServeProcess {
    /// Starts `cx serve` (on ephemeral ports; the admin and HTTP ports too
    /// unless `args` set `--admin-listen` / `--http-listen`) and waits for its JSON start line. The binary is
    /// this build's, or `CX_TEST_SERVE_BIN` when set (to measure another build
    /// with the same test).
    pub fn spawn(args: &[&str], log: &std::path::Path) -> Self {
        let mut command = match std::env::var_os("CX_TEST_SERVE_BIN") {
            Some(bin) => std::process::Command::new(bin),
            None => cx(),
        };
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if !args.contains(&"--admin-listen") {
            command.args(["--admin-listen", "127.0.0.1:0"]);
        }
        if !args.contains(&"--http-listen") {
            command.args(["--http-listen", "127.0.0.1:0"]);
        }
        // As `config`: no default deadline unless the test sets one.
        if !args.contains(&"--deadline-default-ms") {
            command.args(["--deadline-default-ms", "0"]);
        }
        let mut child = command
            .args(args)
            .env("RUST_LOG", "cx_server=debug")
            .stdout(std::process::Stdio::piped())
            .stderr(std::fs::File::create(log).expect("a log file"))
            .spawn()
            .expect("cx serve starts");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("reads the start line");
        let started: serde_json::Value = serde_json::from_str(&line).expect("a JSON start line");
        let address = |key: &str| -> Option<SocketAddr> {
            let text = started[key].as_str()?;
            Some(text.parse().expect("an address"))
        };
        Self {
            pid: child.id(),
            addr: address("listen").unwrap_or_else(|| panic!("no listen address in {line}")),
            admin: address("admin"),
            http: address("http"),
            started,
            child,
        }
    }
}

/// A fresh folder for one test's files, named after `label` and this
/// process.
pub fn temp_dir(label: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("cx-{label}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creates a temp dir");
    dir
}
