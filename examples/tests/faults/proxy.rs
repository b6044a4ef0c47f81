//! A TCP proxy that injects network faults between a process and its
//! upstream (PostgreSQL in the integration tests): black holes, resets and
//! silent failovers, switched on and off from the test.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Bytes one direction of a connection reads at a time.
const CHUNK: usize = 16 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A running proxy; clones share it. Dropping the last clone, or [`stop`],
/// ends the accept loop and every connection.
///
/// Connections are numbered in the order they are accepted (their
/// generation); faults that hit "the connections open now" apply to the
/// generations accepted so far.
///
/// [`stop`]: FaultProxy::stop
#[derive(Clone)]
pub(crate) struct FaultProxy {
    shared: Arc<Shared>,
}

/// What the handles own. Dropping it drops the only sender, which every
/// task reads as the end of the proxy.
struct Shared {
    addr: SocketAddr,
    faults: watch::Sender<Faults>,
    counters: Arc<Counters>,
}

/// Counters shared with the tasks (which must not own [`Shared`]).
#[derive(Default)]
struct Counters {
    /// Connections accepted so far: the next generation.
    accepted: AtomicU64,
    /// Connections accepted and not yet closed.
    open: AtomicUsize,
}

/// The faults in force, broadcast to every task.
#[derive(Clone, Copy, Default)]
struct Faults {
    /// A black hole: no connection moves bytes.
    paused: bool,
    /// Connections of a lower generation never move bytes again.
    frozen_below: u64,
    /// Connections of a lower generation are reset.
    reset_below: u64,
    /// The proxy is stopping.
    stopped: bool,
}

/// What a connection of some generation may do under some faults.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    Flow,
    Hold,
    Reset,
    Stop,
}

impl Faults {
    fn fate(&self, generation: u64) -> Fate {
        if self.stopped {
            Fate::Stop
        } else if generation < self.reset_below {
            Fate::Reset
        } else if self.paused || generation < self.frozen_below {
            Fate::Hold
        } else {
            Fate::Flow
        }
    }
}

impl FaultProxy {
    /// Listens on 127.0.0.1:0 and forwards each accepted connection to
    /// `upstream` (e.g. "127.0.0.1:5432").
    pub(crate) async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds a port on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let (faults, receiver) = watch::channel(Faults::default());
        let counters = Arc::new(Counters::default());
        tokio::spawn(accept_loop(
            listener,
            Arc::from(upstream),
            receiver,
            Arc::clone(&counters),
        ));
        let shared = Shared {
            addr,
            faults,
            counters,
        };
        FaultProxy {
            shared: Arc::new(shared),
        }
    }

    /// The proxy's address, "127.0.0.1:PORT".
    pub(crate) fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Packets vanish: every connection, open or new, stops moving bytes in
    /// both directions. Nothing is closed and nothing is lost: bytes already
    /// read are held and delivered after [`heal`](Self::heal), as TCP
    /// retransmission would. New connections are accepted, but their
    /// upstream connection is only opened once the hole ends.
    pub(crate) fn black_hole(&self) {
        self.shared
            .faults
            .send_modify(|faults| faults.paused = true);
    }

    /// Ends a black hole: every connection not frozen by
    /// [`silent_failover`](Self::silent_failover) moves bytes again.
    pub(crate) fn heal(&self) {
        self.shared
            .faults
            .send_modify(|faults| faults.paused = false);
    }

    /// Resets every open connection, frozen ones included, on both sides
    /// (`SO_LINGER` 0, then closed: each peer gets an RST). New connections
    /// work normally.
    pub(crate) fn reset_all(&self) {
        let accepted = self.accepted();
        self.shared
            .faults
            .send_modify(|faults| faults.reset_below = faults.reset_below.max(accepted));
    }

    /// A silent failover: every connection open now freezes until the proxy
    /// stops (it never moves another byte and is never closed), while
    /// connections opened afterwards work normally. Ends a black hole too.
    pub(crate) fn silent_failover(&self) {
        let accepted = self.accepted();
        self.shared.faults.send_modify(|faults| {
            faults.frozen_below = faults.frozen_below.max(accepted);
            faults.paused = false;
        });
    }

    /// Ends the accept loop and closes every connection, as dropping the
    /// last handle does.
    pub(crate) fn stop(&self) {
        self.shared
            .faults
            .send_modify(|faults| faults.stopped = true);
    }

    /// Connections currently open (accepted and not yet closed).
    pub(crate) fn open_connections(&self) -> usize {
        self.shared.counters.open.load(Ordering::SeqCst)
    }

    fn accepted(&self) -> u64 {
        self.shared.counters.accepted.load(Ordering::SeqCst)
    }
}

/// Accepts connections until the proxy stops, each served by a task of its
/// own.
async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<str>,
    mut faults: watch::Receiver<Faults>,
    counters: Arc<Counters>,
) {
    loop {
        let accepted = tokio::select! {
            () = stopped(&mut faults) => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((client, _)) = accepted else {
            tokio::time::sleep(ACCEPT_BACKOFF).await;
            continue;
        };
        let gate = Gate {
            faults: faults.clone(),
            generation: counters.accepted.fetch_add(1, Ordering::SeqCst),
        };
        let open = OpenGuard::new(Arc::clone(&counters));
        tokio::spawn(serve(client, Arc::clone(&upstream), gate, open));
    }
}

/// Resolves once the proxy stops or its last handle is dropped.
async fn stopped(faults: &mut watch::Receiver<Faults>) {
    // An error is the dropped sender: stopped as well.
    let _ = faults.wait_for(|faults| faults.stopped).await;
}

/// Counts a connection as open for as long as it lives, however its task
/// ends.
struct OpenGuard(Arc<Counters>);

impl OpenGuard {
    fn new(counters: Arc<Counters>) -> OpenGuard {
        counters.open.fetch_add(1, Ordering::SeqCst);
        OpenGuard(counters)
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One connection's view of the faults.
#[derive(Clone)]
struct Gate {
    faults: watch::Receiver<Faults>,
    generation: u64,
}

impl Gate {
    /// Resolves once the connection may move bytes; never, if it is to end
    /// (whoever waits on [`ended`](Self::ended) ends it).
    async fn flowing(&mut self) {
        let generation = self.generation;
        let flowing = self
            .faults
            .wait_for(|faults| faults.fate(generation) == Fate::Flow)
            .await
            .is_ok();
        if !flowing {
            std::future::pending::<()>().await;
        }
    }

    /// Resolves once the connection may no longer move bytes.
    async fn held(&mut self) {
        let generation = self.generation;
        let _ = self
            .faults
            .wait_for(|faults| faults.fate(generation) != Fate::Flow)
            .await;
    }

    /// Resolves once the connection is to be reset or the proxy stops.
    async fn ended(&mut self) -> End {
        let generation = self.generation;
        let fate = self
            .faults
            .wait_for(|faults| matches!(faults.fate(generation), Fate::Reset | Fate::Stop))
            .await
            .map(|faults| faults.fate(generation));
        match fate {
            Ok(Fate::Reset) => End::Reset,
            _ => End::Stop,
        }
    }
}

/// How a connection ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    /// Both sides closed their writing halves.
    Closed,
    /// Reset by the fault, or by an error on either side (which a real
    /// network would pass on as a reset too).
    Reset,
    /// The proxy stops: both sides are closed cleanly.
    Stop,
}

/// Serves one accepted connection until it ends, however it ends.
async fn serve(mut client: TcpStream, upstream: Arc<str>, gate: Gate, _open: OpenGuard) {
    let mut server = match connect(&upstream, gate.clone()).await {
        Ok(server) => server,
        Err(end) => return close(&client, end),
    };
    // Without it, small queries wait on Nagle's algorithm in each hop.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let end = relay(&mut client, &mut server, gate).await;
    close(&client, end);
    close(&server, end);
}

/// Connects upstream once the connection may move bytes: during a black
/// hole, the upstream sees nothing of a new connection either.
async fn connect(upstream: &str, mut gate: Gate) -> Result<TcpStream, End> {
    let mut ended = gate.clone();
    tokio::select! {
        end = ended.ended() => Err(end),
        () = gate.flowing() => {
            // A refused upstream can only be told to a client already
            // accepted as a reset.
            TcpStream::connect(upstream).await.map_err(|_| End::Reset)
        }
    }
}

/// Prepares `socket` to close the way `end` says; dropping it closes it.
fn close(socket: &TcpStream, end: End) {
    if end == End::Reset {
        // Fails only on a socket already dead, which drops as a reset anyway.
        let _ = socket.set_zero_linger();
    }
}

/// Moves bytes both ways until both sides are done, either fails, or the
/// connection is ended by a fault.
async fn relay(client: &mut TcpStream, server: &mut TcpStream, gate: Gate) -> End {
    let mut ended = gate.clone();
    let (client_reads, client_writes) = client.split();
    let (server_reads, server_writes) = server.split();
    let both_ways = async {
        tokio::try_join!(
            pump(client_reads, server_writes, gate.clone()),
            pump(server_reads, client_writes, gate),
        )
    };
    tokio::select! {
        end = ended.ended() => end,
        moved = both_ways => match moved {
            Ok(_) => End::Closed,
            Err(_) => End::Reset,
        },
    }
}

/// Copies one direction, holding bytes whenever the connection may not move
/// them, and passes the end of the stream on as a half-close.
async fn pump(mut from: ReadHalf<'_>, mut to: WriteHalf<'_>, mut gate: Gate) -> io::Result<()> {
    let mut chunk = vec![0; CHUNK];
    loop {
        gate.flowing().await;
        let read = from.read(&mut chunk).await?;
        if read == 0 {
            gate.flowing().await;
            return to.shutdown().await;
        }
        write_gated(&mut to, &chunk[..read], &mut gate).await?;
    }
}

/// Writes all of `bytes`, stopping in between whenever the connection may
/// not move them (a pending write is dropped without having written
/// anything, so none are lost or repeated).
async fn write_gated(to: &mut WriteHalf<'_>, bytes: &[u8], gate: &mut Gate) -> io::Result<()> {
    let mut written = 0;
    while written < bytes.len() {
        gate.flowing().await;
        tokio::select! {
            () = gate.held() => {}
            wrote = to.write(&bytes[written..]) => match wrote? {
                0 => return Err(io::ErrorKind::WriteZero.into()),
                wrote => written += wrote,
            },
        }
    }
    Ok(())
}
