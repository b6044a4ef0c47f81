//! 19,990 connections that send a request line and one header, then
//! nothing, against a server whose open-file limit is 20,000 (memory store,
//! default flags but a shorter header read timeout). Without limits they
//! hold every descriptor until their client lets go, and `/healthz` goes
//! silent. With them, connections past the default cap are closed as soon
//! as they are accepted, the server keeps its spare descriptors, every held
//! one is closed by the header read timeout, and the server answers at once
//! afterwards.
//!
//! The attack comes from [`PROCESSES`] processes of this test binary (its
//! [`attacker`] test, run with `--ignored` and told what to do in
//! [`ATTACKER`]), each holding its share: no process here needs more
//! descriptors than the server it attacks has.

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ibiki_examples::limits::default_max_connections;
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::{TcpSocket, TcpStream};
use tokio::process::{Child, ChildStdout, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout;

use crate::server_process::ServerProcess;
use crate::support::{
    SECRET, TOKEN, http, one_at_a_time, open_files, refusals, reply, signed_webhook,
};

/// The attacking connections.
const ATTACKERS: usize = 19_990;

/// The server's open-file limit.
const SERVER_OPEN_FILES: u64 = 20_000;

/// `--header-read-timeout`, its default: long enough that every attacker is
/// open before the first is closed, even on a loaded machine (5 s was not,
/// with a build running beside the test).
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections being opened at once.
const OPENING: usize = 256;

/// What one connection saw.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// From the moment it started connecting to the server closing it: the
    /// server's timer starts later (when it accepts), never earlier.
    lived: Duration,
    /// When the server closed it.
    closed: SystemTime,
    /// Bytes the server sent: none, for a request that never finished.
    answered: usize,
}

/// Loopback addresses the attackers connect from, in turn: from one
/// address, tens of thousands of connections exhaust its ephemeral ports,
/// and the kernel's search for a free one makes each connect slower than
/// the last.
const SOURCES: usize = 16;

/// Opens a connection from `127.0.0.<source + 2>`, sends half a request,
/// lets the next one open (`opening`), then waits for the server to close
/// it.
async fn half_open(address: SocketAddr, source: usize, opening: OwnedSemaphorePermit) -> Seen {
    let started = SystemTime::now();
    let socket = TcpSocket::new_v4().expect("a socket");
    let from = Ipv4Addr::new(127, 0, 0, 2 + (source % SOURCES) as u8);
    socket.bind((from, 0).into()).expect("bound");
    let mut stream = socket.connect(address).await.expect("connected");
    // A connection closed at once may refuse the write: it is sent anyway.
    let _ = stream
        .write_all(b"POST /webhooks/sms HTTP/1.1\r\nHost: ibiki\r\n")
        .await;
    drop(opening);
    let mut answered = 0;
    let mut buf = [0; 512];
    // EOF, or a reset: either way, closed.
    while let Ok(read @ 1..) = stream.read(&mut buf).await {
        answered += read;
    }
    let closed = SystemTime::now();
    Seen {
        lived: closed.duration_since(started).unwrap_or_default(),
        closed,
        answered,
    }
}

/// Whether a new connection is closed within a second, unanswered.
async fn refused_at_once(address: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(address).await else {
        return true;
    };
    let _ = stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: ibiki\r\n\r\n")
        .await;
    let mut buf = [0; 64];
    matches!(
        timeout(Duration::from_secs(1), stream.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// The server's open file descriptors.
fn descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(Iterator::count)
        .unwrap_or(0)
}

/// The variable that makes [`attacker`] attack: `<address> <connections>`.
const ATTACKER: &str = "IBIKI_TEST_HALF_OPEN_ATTACK";

/// Attacking processes.
const PROCESSES: usize = 2;

/// What an attacker prints, each line after this.
const SAYS: &str = "attack: ";

/// One attacking process: opens its connections, says `open` when all are,
/// then `seen <lived µs> <closed, µs since 1970> <bytes answered>` for each
/// as it is closed, then `done`; or `skip <why>`. Does nothing unless run by
/// the half-open test.
#[test]
#[ignore = "an attacking process of the half-open test, started by it"]
fn attacker() {
    let Ok(task) = std::env::var(ATTACKER) else {
        return;
    };
    let (address, count) = task.split_once(' ').expect("<address> <connections>");
    let count: usize = count.parse().expect("a count");
    if let Err(why) = open_files(count as u64 + 256) {
        println!("{SAYS}skip {why}");
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let address = address.parse().expect("an address");
    runtime.block_on(attack(address, count));
}

async fn attack(address: SocketAddr, count: usize) {
    let opening = Arc::new(Semaphore::new(OPENING));
    let mut attackers = Vec::with_capacity(count);
    for source in 0..count {
        let permit = opening.clone().acquire_owned().await.expect("open");
        attackers.push(tokio::spawn(half_open(address, source, permit)));
    }
    let _all = opening.acquire_many(OPENING as u32).await.expect("open");
    println!("{SAYS}open");
    for attacker in attackers {
        let seen = attacker.await.expect("not panicked");
        let closed = seen.closed.duration_since(UNIX_EPOCH).expect("after 1970");
        println!(
            "{SAYS}seen {} {} {}",
            seen.lived.as_micros(),
            closed.as_micros(),
            seen.answered
        );
    }
    println!("{SAYS}done");
}

/// An attacking process, and what it says.
struct Attacker {
    _process: Child,
    says: Lines<BufReader<ChildStdout>>,
}

impl Attacker {
    fn start(address: &str, count: usize) -> Self {
        let mut process = Command::new(std::env::current_exe().expect("this test binary"))
            .args(["half_open::attacker", "--exact", "--ignored", "--nocapture"])
            .env(ATTACKER, format!("{address} {count}"))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("an attacking process");
        let stdout = process.stdout.take().expect("piped");
        Self {
            _process: process,
            says: BufReader::new(stdout).lines(),
        }
    }

    /// The next thing it says.
    async fn next(&mut self) -> String {
        loop {
            let line = timeout(HEADER_TIMEOUT * 4, self.says.next_line()).await;
            let line = line.expect("in time").expect("readable");
            let line = line.expect("an attacker exited without saying done");
            if let Some(said) = line.strip_prefix(SAYS) {
                return said.to_owned();
            }
        }
    }

    /// Every connection it saw closed.
    async fn seen(&mut self) -> Vec<Seen> {
        let mut seen = Vec::new();
        loop {
            let said = self.next().await;
            if said == "done" {
                return seen;
            }
            let fields: Vec<u128> = said
                .strip_prefix("seen ")
                .expect("seen or done")
                .split(' ')
                .map(|field| field.parse().expect("a number"))
                .collect();
            let micros = |n: u128| Duration::from_micros(u64::try_from(n).expect("µs"));
            seen.push(Seen {
                lived: micros(fields[0]),
                closed: UNIX_EPOCH + micros(fields[1]),
                answered: usize::try_from(fields[2]).expect("bytes"),
            });
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_open_requests_are_refused_past_the_cap_closed_in_time_and_the_server_answers() {
    let _turn = one_at_a_time().await;
    let cap = default_max_connections(SERVER_OPEN_FILES);
    let header_timeout = format!("{}s", HEADER_TIMEOUT.as_secs());
    let server = ServerProcess::start_with_open_files(
        SERVER_OPEN_FILES,
        &[
            "--header-read-timeout",
            &header_timeout,
            "--admin-token",
            TOKEN,
            "--webhook-secret",
            SECRET,
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        &[],
    )
    .await;
    let scraper = server.metrics_base.clone().expect("a metrics address");
    let address = server.base.trim_start_matches("http://").to_owned();
    let http = http();
    // Compiles the numbering metadata now rather than in the timed webhook.
    let warm_up = signed_webhook(&http, &server.base, reply("SM0", "+14155550100"));
    assert_eq!(warm_up.send().await.expect("sent").status(), StatusCode::OK);

    let started = SystemTime::now();
    let share = ATTACKERS / PROCESSES;
    let mut attackers: Vec<Attacker> = (0..PROCESSES)
        .map(|i| {
            let count = if i == 0 {
                ATTACKERS - share * (PROCESSES - 1)
            } else {
                share
            };
            Attacker::start(&address, count)
        })
        .collect();
    for attacker in &mut attackers {
        match attacker.next().await.as_str() {
            "open" => {}
            said => {
                eprintln!("skipped: {said}");
                return;
            }
        }
    }
    let all_open = SystemTime::now();
    let took = all_open.duration_since(started).expect("later");
    assert!(
        took < HEADER_TIMEOUT,
        "opening {ATTACKERS} connections took {took:?}, longer than the header read timeout"
    );

    // The attack at its height: once the server has accepted up to its cap
    // (some attackers may still wait in its listen queue), a new connection
    // is closed at once, and descriptors are left for the database and files.
    let full = Instant::now() + HEADER_TIMEOUT / 2;
    while descriptors(server.pid()) < cap && Instant::now() < full {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        refused_at_once(&address).await,
        "past the cap, refused at once"
    );
    let open_descriptors = descriptors(server.pid());
    assert!(
        open_descriptors <= cap + 64,
        "{open_descriptors} descriptors open for a cap of {cap}"
    );
    let during = refusals(&http, &scraper).await;

    let mut seen = Vec::with_capacity(ATTACKERS);
    for attacker in &mut attackers {
        seen.extend(attacker.seen().await);
    }
    assert_eq!(seen.len(), ATTACKERS);
    // A held connection lives the header read timeout at least; one
    // refused only as long as it waited to be accepted.
    let (refused, held): (Vec<Seen>, Vec<Seen>) =
        seen.iter().partition(|seen| seen.lived < HEADER_TIMEOUT);
    let last_closed = seen.iter().map(|s| s.closed).max().expect("attackers");
    let last_closed = last_closed.duration_since(all_open).unwrap_or_default();
    let longest = seen.iter().map(|s| s.lived).max().expect("attackers");
    eprintln!(
        "{ATTACKERS} opened in {took:?}; {} refused at once, {} held; the last closed \
         {last_closed:?} after all were open, the longest lived {longest:?}; \
         {open_descriptors} descriptors open at the height; refusals then: {during:?}",
        refused.len(),
        held.len(),
    );
    assert!(
        seen.iter().all(|s| s.answered == 0),
        "half a request gets no answer"
    );
    assert_eq!(held.len(), cap, "the cap filled, and held no more");
    assert_eq!(refused.len(), ATTACKERS - cap, "the rest refused at once");
    assert!(
        last_closed <= HEADER_TIMEOUT + Duration::from_secs(2),
        "all closed within the header read timeout + 2 s"
    );

    // Afterwards: answered within a second, on connections of their own.
    let asked = Instant::now();
    let health = http.get(format!("{}/healthz", server.base)).send().await;
    assert_eq!(health.expect("answered").status(), StatusCode::OK);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    let asked = Instant::now();
    let webhook = signed_webhook(&http, &server.base, reply("SM1", "+14155550100"));
    assert_eq!(
        webhook.send().await.expect("answered").status(),
        StatusCode::OK
    );
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );

    let after = refusals(&http, &scraper).await;
    assert_eq!(after["header_timeout"], held.len() as u64, "{after:?}");
    // The attackers past the cap, and the probe.
    assert_eq!(
        after["max_connections"],
        refused.len() as u64 + 1,
        "{after:?}"
    );
    assert_eq!(after["idle"], 0, "{after:?}");
}
