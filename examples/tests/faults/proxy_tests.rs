//! The fault proxy itself, against an echo server.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, timeout};

use crate::proxy::FaultProxy;

/// How long bytes that should arrive may take.
const ARRIVES: Duration = Duration::from_secs(2);
/// How long bytes that should not arrive are waited for.
const SILENCE: Duration = Duration::from_millis(300);

/// How each connection of an echo server ended: bytes echoed, or the
/// error that ended it.
type Outcomes = mpsc::UnboundedReceiver<io::Result<u64>>;

/// An echo server on 127.0.0.1:0, for the tests' lifetime.
async fn echo_server() -> (SocketAddr, Outcomes) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("the echo server binds a port");
    let addr = listener
        .local_addr()
        .expect("a bound listener has an address");
    let (outcomes, received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let outcomes = outcomes.clone();
            tokio::spawn(async move {
                let (mut reads, mut writes) = stream.split();
                let echoed = tokio::io::copy(&mut reads, &mut writes).await;
                // The test may be over and its receiver gone.
                let _ = outcomes.send(echoed);
            });
        }
    });
    (addr, received)
}

/// A proxy in front of a fresh echo server.
async fn proxied_echo() -> (FaultProxy, Outcomes) {
    let (upstream, outcomes) = echo_server().await;
    (FaultProxy::start(&upstream.to_string()).await, outcomes)
}

async fn connect(proxy: &FaultProxy) -> TcpStream {
    TcpStream::connect(proxy.addr())
        .await
        .expect("the proxy accepts connections")
}

/// Sends `bytes` and asserts they come back.
async fn assert_echoes(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).await.expect("the write succeeds");
    assert_receives(stream, bytes).await;
}

async fn assert_receives(stream: &mut TcpStream, bytes: &[u8]) {
    let mut received = vec![0; bytes.len()];
    timeout(ARRIVES, stream.read_exact(&mut received))
        .await
        .expect("the bytes arrive in time")
        .expect("the read succeeds");
    assert_eq!(received, bytes);
}

/// Asserts that nothing arrives for a while: no byte, no end of stream,
/// no error.
async fn assert_silent(stream: &mut TcpStream) {
    let mut byte = [0; 1];
    let read = timeout(SILENCE, stream.read(&mut byte)).await;
    assert!(read.is_err(), "expected silence, read {read:?}");
}

/// Waits until `condition` holds, failing after [`ARRIVES`].
async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + ARRIVES;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        sleep(Duration::from_millis(10)).await;
    }
}

async fn next_outcome(outcomes: &mut Outcomes) -> io::Result<u64> {
    timeout(ARRIVES, outcomes.recv())
        .await
        .expect("the upstream connection ends in time")
        .expect("the echo server runs")
}

#[tokio::test]
async fn bytes_pass_both_ways_and_half_closes_pass_on() {
    let (proxy, mut outcomes) = proxied_echo().await;
    let mut stream = connect(&proxy).await;
    assert_echoes(&mut stream, b"hello").await;

    // The client's FIN reaches the echo server, whose FIN comes back.
    stream
        .shutdown()
        .await
        .expect("the client shuts down its writes");
    let mut rest = Vec::new();
    timeout(ARRIVES, stream.read_to_end(&mut rest))
        .await
        .expect("the end of stream arrives in time")
        .expect("the stream ends cleanly");
    assert!(rest.is_empty());
    assert_eq!(next_outcome(&mut outcomes).await.expect("clean end"), 5);
    eventually("the connection closes", || proxy.open_connections() == 0).await;
}

#[tokio::test]
async fn a_black_hole_holds_bytes_until_healed() {
    let (proxy, _outcomes) = proxied_echo().await;
    let mut open = connect(&proxy).await;
    assert_echoes(&mut open, b"before").await;

    proxy.black_hole();
    open.write_all(b"during").await.expect("the write succeeds");
    assert_silent(&mut open).await;
    // New connections are accepted but go nowhere either.
    let mut new = connect(&proxy).await;
    new.write_all(b"new").await.expect("the write succeeds");
    assert_silent(&mut new).await;

    proxy.heal();
    assert_receives(&mut open, b"during").await;
    assert_receives(&mut new, b"new").await;
    assert_echoes(&mut open, b"after").await;
}

#[tokio::test]
async fn reset_all_resets_open_connections_on_both_sides() {
    let (proxy, mut outcomes) = proxied_echo().await;
    let mut open = connect(&proxy).await;
    assert_echoes(&mut open, b"before").await;

    proxy.reset_all();
    let mut byte = [0; 1];
    let read = timeout(ARRIVES, open.read(&mut byte))
        .await
        .expect("the reset arrives in time");
    let error = read.expect_err("the read fails");
    assert_eq!(error.kind(), io::ErrorKind::ConnectionReset);
    // The error is reported once; the socket then reads as ended and
    // refuses writes.
    assert_eq!(open.read(&mut byte).await.expect("a plain end"), 0);
    let write = open.write_all(b"after").await.expect_err("the write fails");
    assert_eq!(write.kind(), io::ErrorKind::BrokenPipe);

    let upstream = next_outcome(&mut outcomes).await.expect_err("a reset");
    assert_eq!(upstream.kind(), io::ErrorKind::ConnectionReset);

    let mut new = connect(&proxy).await;
    assert_echoes(&mut new, b"new").await;
    eventually("only the new connection is open", || {
        proxy.open_connections() == 1
    })
    .await;
}

#[tokio::test]
async fn a_silent_failover_freezes_open_connections_only() {
    let (proxy, _outcomes) = proxied_echo().await;
    let mut old = connect(&proxy).await;
    assert_echoes(&mut old, b"before").await;

    proxy.black_hole();
    proxy.silent_failover();
    old.write_all(b"lost").await.expect("the write succeeds");
    assert_silent(&mut old).await;
    // The failover ended the black hole for new connections.
    let mut new = connect(&proxy).await;
    assert_echoes(&mut new, b"new").await;

    // Healing does not thaw the old connection, still open.
    proxy.heal();
    assert_silent(&mut old).await;
    assert_eq!(proxy.open_connections(), 2);
}

#[tokio::test]
async fn open_connections_counts_accepted_and_not_closed() {
    let (proxy, _outcomes) = proxied_echo().await;
    assert_eq!(proxy.open_connections(), 0);
    let mut first = connect(&proxy).await;
    let mut second = connect(&proxy).await;
    assert_echoes(&mut first, b"1").await;
    assert_echoes(&mut second, b"2").await;
    assert_eq!(proxy.open_connections(), 2);

    drop(first);
    eventually("one connection is open", || proxy.open_connections() == 1).await;
    drop(second);
    eventually("no connection is open", || proxy.open_connections() == 0).await;
}

#[tokio::test]
async fn stop_closes_connections_and_the_listener() {
    let (proxy, _outcomes) = proxied_echo().await;
    let mut open = connect(&proxy).await;
    assert_echoes(&mut open, b"before").await;

    proxy.stop();
    assert_ends(&mut open).await;
    eventually("no connection is open", || proxy.open_connections() == 0).await;
    assert_refused(proxy.addr()).await;
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_proxy() {
    let (proxy, _outcomes) = proxied_echo().await;
    let addr = proxy.addr();
    let mut open = connect(&proxy).await;
    assert_echoes(&mut open, b"before").await;

    let other = proxy.clone();
    drop(proxy);
    assert_echoes(&mut open, b"still").await;
    // Frozen connections end too.
    other.silent_failover();
    drop(other);
    assert_ends(&mut open).await;
    assert_refused(addr).await;
}

/// Asserts that `stream` ends cleanly (a FIN, not a reset).
async fn assert_ends(stream: &mut TcpStream) {
    let mut byte = [0; 1];
    let read = timeout(ARRIVES, stream.read(&mut byte))
        .await
        .expect("the end arrives in time")
        .expect("a clean end");
    assert_eq!(read, 0);
}

/// Asserts that nothing listens on `addr` any more, once the accept loop
/// has ended.
async fn assert_refused(addr: SocketAddr) {
    let deadline = Instant::now() + ARRIVES;
    loop {
        match TcpStream::connect(addr).await {
            Err(error) => {
                assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
                return;
            }
            Ok(_) => assert!(Instant::now() < deadline, "{addr} still accepts"),
        }
        sleep(Duration::from_millis(10)).await;
    }
}
