//! The worker, with the memory store, against a real local HTTP receiver.

mod flaky;
mod receiver;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ibiki_core::{
    AddressPolicy, AssignmentStore, ClientId, DynForwardStore, EndpointSecret, EndpointUrl,
    Forward, ForwardStatus, ForwardStore, InboundReply, Normalizer, PageRequest, PhoneNumber,
    RawReply, Receipt, ReplyStore,
};
use ibiki_forward::{
    AttemptResult, ForwardObserver, RetrySchedule, Sender, SenderConfig, Worker, WorkerConfig,
};
use ibiki_memory::MemoryStore;
use standardwebhooks::Webhook;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use receiver::{Receiver, Reply, TestResult};

/// A client with a number and an endpoint at `url`.
async fn client_with_endpoint(
    store: &MemoryStore,
    id: &str,
    number: &str,
    url: &str,
) -> Result<(ClientId, EndpointSecret), Box<dyn std::error::Error + Send + Sync>> {
    let client = ClientId::new(id)?;
    store
        .replace_numbers(&client, &[PhoneNumber::parse_canonical(number)?])
        .await?;
    let url = EndpointUrl::parse(url, AddressPolicy::AllowPrivate)?;
    let put = store
        .put_endpoint(&client, &url, true, EndpointSecret::generate()?)
        .await?;
    Ok((client, put.created_secret.ok_or("a new endpoint's secret")?))
}

/// Receives a reply to `to`, which a client owns.
async fn receive(store: &MemoryStore, to: &str, body: &str) -> TestResult {
    let raw = RawReply {
        message_id: None,
        from: "+15005550006",
        to,
        body,
    };
    let reply = InboundReply::new(&Normalizer::new(), raw, time::OffsetDateTime::now_utc())?;
    let receipt = store.receive(reply).await?;
    assert!(matches!(receipt, Receipt::Routed(_)), "{receipt:?}");
    Ok(())
}

async fn forwards(
    store: &MemoryStore,
    client: &ClientId,
    status: Option<ForwardStatus>,
) -> Result<Vec<Forward>, Box<dyn std::error::Error + Send + Sync>> {
    Ok(store
        .forwards(client, status, &PageRequest::first(500))
        .await?
        .items)
}

/// Waits (up to 20 s) until `client` has `n` forwards of `status`.
async fn until_forwards(
    store: &MemoryStore,
    client: &ClientId,
    status: ForwardStatus,
    n: usize,
) -> Result<Vec<Forward>, Box<dyn std::error::Error + Send + Sync>> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = forwards(store, client, Some(status)).await?;
        if found.len() >= n {
            return Ok(found);
        }
        if Instant::now() > deadline {
            let all = forwards(store, client, None).await?;
            return Err(format!("{} of {n} {status:?} forwards: {all:#?}", found.len()).into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counts what the worker tells its observer.
#[derive(Default)]
struct Counts {
    delivered: AtomicU32,
    failed: AtomicU32,
    exhausted: AtomicU32,
    lags: Mutex<Vec<Duration>>,
}

impl ForwardObserver for Counts {
    fn attempt(&self, result: AttemptResult, _duration: Duration) {
        let counter = match result {
            AttemptResult::Delivered => &self.delivered,
            AttemptResult::AttemptFailed => &self.failed,
            AttemptResult::Exhausted => &self.exhausted,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }

    fn delivered(&self, lag: Duration) {
        if let Ok(mut lags) = self.lags.lock() {
            lags.push(lag);
        }
    }
}

/// A running worker, and what stops it.
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) -> TestResult {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task).await??;
        Ok(())
    }
}

fn start<S: ForwardStore + 'static>(
    store: &Arc<S>,
    schedule: RetrySchedule,
    config: WorkerConfig,
    observer: Arc<dyn ForwardObserver>,
) -> Running {
    let sender = Sender::new(SenderConfig {
        timeout: Duration::from_secs(5),
        policy: AddressPolicy::AllowPrivate,
        ..SenderConfig::default()
    })
    .expect("a sender");
    let store: Arc<DynForwardStore> = store.clone();
    let worker = Worker::new(store, sender, schedule, config).with_observer(observer);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    Running { stop, task }
}

fn config(concurrency: u32, per_endpoint: u32) -> WorkerConfig {
    WorkerConfig {
        concurrency,
        per_endpoint,
        lease: Duration::from_secs(30),
        poll_interval: Duration::from_millis(50),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_is_delivered_once_each_signed() -> TestResult {
    let receiver = Receiver::start().await?;
    let store = Arc::new(MemoryStore::new());
    let (client, secret) =
        client_with_endpoint(&store, "client-1", "+14155550100", &receiver.url("/hook")).await?;
    let counts = Arc::new(Counts::default());
    let running = start(
        &store,
        RetrySchedule::default(),
        config(8, 4),
        counts.clone(),
    );
    for i in 0..60 {
        receive(&store, "+14155550100", &format!("reply {i}")).await?;
    }
    let delivered = until_forwards(&store, &client, ForwardStatus::Delivered, 60).await?;
    running.stop().await?;

    assert!(
        delivered
            .iter()
            .all(|f| f.attempts == 1 && f.last_status == Some(204))
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 60);
    let webhook = Webhook::new(secret.expose())?;
    let mut ids = HashSet::new();
    let mut bodies = HashSet::new();
    for request in &requests {
        webhook.verify(&request.body, &request.headers)?;
        ids.insert(request.headers["webhook-id"].to_str()?.to_owned());
        let json: serde_json::Value = serde_json::from_slice(&request.body)?;
        assert_eq!(json["data"]["userId"], "client-1");
        bodies.insert(json["data"]["body"].as_str().unwrap_or_default().to_owned());
    }
    assert_eq!(ids.len(), 60);
    assert_eq!(bodies.len(), 60);
    assert_eq!(counts.delivered.load(Ordering::SeqCst), 60);
    assert_eq!(counts.lags.lock().map(|l| l.len()).unwrap_or(0), 60);
    assert_eq!(store.pending_forwards().await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_retried_with_the_same_id_and_body() -> TestResult {
    let receiver = Receiver::start().await?;
    receiver.answer("/flaky", |n| {
        if n == 0 {
            Reply::status(500).body("try later")
        } else {
            Reply::status(200)
        }
    });
    let store = Arc::new(MemoryStore::new());
    let (client, secret) =
        client_with_endpoint(&store, "client-1", "+14155550100", &receiver.url("/flaky")).await?;
    let counts = Arc::new(Counts::default());
    let schedule = RetrySchedule::new([Duration::from_millis(100)]);
    let running = start(&store, schedule, config(4, 4), counts.clone());
    receive(&store, "+14155550100", "Yes").await?;
    let [forward] = until_forwards(&store, &client, ForwardStatus::Delivered, 1)
        .await?
        .try_into()
        .map_err(|f| format!("{f:?}"))?;
    running.stop().await?;

    assert_eq!(forward.attempts, 2);
    assert_eq!(forward.last_status, Some(200));
    assert_eq!(forward.last_error, None);
    let [first, second] = receiver
        .requests()
        .try_into()
        .map_err(|r| format!("{r:?}"))?;
    assert_eq!(first.headers["webhook-id"], second.headers["webhook-id"]);
    assert_eq!(first.body, second.body);
    for request in [&first, &second] {
        Webhook::new(secret.expose())?.verify(&request.body, &request.headers)?;
    }
    assert_eq!(counts.failed.load(Ordering::SeqCst), 1);
    assert_eq!(counts.delivered.load(Ordering::SeqCst), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_endpoint_does_not_hold_up_another_client() -> TestResult {
    let receiver = Receiver::start().await?;
    receiver.answer("/slow", |_| {
        Reply::status(200).after(Duration::from_millis(1500))
    });
    let store = Arc::new(MemoryStore::new());
    let (slow, _) =
        client_with_endpoint(&store, "slow", "+14155550100", &receiver.url("/slow")).await?;
    let (fast, _) =
        client_with_endpoint(&store, "fast", "+14155550101", &receiver.url("/fast")).await?;
    // The slow client's forwards are the oldest: claimed first.
    for i in 0..4 {
        receive(&store, "+14155550100", &format!("slow {i}")).await?;
    }
    for i in 0..4 {
        receive(&store, "+14155550101", &format!("fast {i}")).await?;
    }
    let started = Instant::now();
    let running = start(
        &store,
        RetrySchedule::default(),
        config(4, 2),
        Arc::new(Counts::default()),
    );
    until_forwards(&store, &fast, ForwardStatus::Delivered, 4).await?;
    let fast_took = started.elapsed();
    let slow_started = receiver.requests_to("/slow").len();
    let slow_delivered = forwards(&store, &slow, Some(ForwardStatus::Delivered))
        .await?
        .len();
    until_forwards(&store, &slow, ForwardStatus::Delivered, 4).await?;
    running.stop().await?;

    // Two slots of four at most for the slow endpoint: the fast client's
    // forwards went through the other two while the first slow ones waited.
    assert!(fast_took < Duration::from_millis(1200), "{fast_took:?}");
    assert_eq!(slow_started, 2);
    assert_eq!(slow_delivered, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_schedule_leaves_the_forward_failed() -> TestResult {
    let receiver = Receiver::start().await?;
    receiver.answer("/down", |_| Reply::status(503).body("down"));
    let store = Arc::new(MemoryStore::new());
    let (client, _) =
        client_with_endpoint(&store, "client-1", "+14155550100", &receiver.url("/down")).await?;
    let counts = Arc::new(Counts::default());
    let schedule: RetrySchedule = "20ms,20ms".parse()?;
    let running = start(&store, schedule, config(4, 4), counts.clone());
    receive(&store, "+14155550100", "Yes").await?;
    let [forward] = until_forwards(&store, &client, ForwardStatus::Failed, 1)
        .await?
        .try_into()
        .map_err(|f| format!("{f:?}"))?;
    // Nothing more is attempted.
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await?;

    assert_eq!(forward.attempts, 3);
    assert_eq!(forward.last_status, Some(503));
    assert_eq!(forward.last_error.as_deref(), Some("down"));
    assert_eq!(forward.next_attempt_at, None);
    assert_eq!(receiver.requests().len(), 3);
    assert_eq!(counts.failed.load(Ordering::SeqCst), 2);
    assert_eq!(counts.exhausted.load(Ordering::SeqCst), 1);
    assert_eq!(store.pending_forwards().await?, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_the_attempts_in_flight_finish() -> TestResult {
    let receiver = Receiver::start().await?;
    receiver.answer("/slow", |_| {
        Reply::status(200).after(Duration::from_millis(500))
    });
    let store = Arc::new(MemoryStore::new());
    let (client, _) =
        client_with_endpoint(&store, "client-1", "+14155550100", &receiver.url("/slow")).await?;
    let running = start(
        &store,
        RetrySchedule::default(),
        config(4, 4),
        Arc::new(Counts::default()),
    );
    receive(&store, "+14155550100", "Yes").await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.requests().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running.stop().await?;
    // Recorded before run returned.
    let delivered = forwards(&store, &client, Some(ForwardStatus::Delivered)).await?;
    assert_eq!(delivered.len(), 1);
    // Claims nothing after it stopped.
    receive(&store, "+14155550100", "After").await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.requests().len(), 1);
    assert_eq!(store.pending_forwards().await?, 1);
    Ok(())
}

#[tokio::test]
async fn concurrency_zero_does_not_run() -> TestResult {
    let receiver = Receiver::start().await?;
    let store = Arc::new(MemoryStore::new());
    client_with_endpoint(&store, "client-1", "+14155550100", &receiver.url("/hook")).await?;
    receive(&store, "+14155550100", "Yes").await?;
    let sender = Sender::new(SenderConfig {
        policy: AddressPolicy::AllowPrivate,
        ..SenderConfig::default()
    })?;
    let worker = Worker::new(
        store.clone(),
        sender,
        RetrySchedule::default(),
        WorkerConfig {
            concurrency: 0,
            ..WorkerConfig::default()
        },
    );
    // Returns at once, though shutdown never comes.
    tokio::time::timeout(Duration::from_secs(5), worker.run(std::future::pending())).await?;
    assert!(receiver.requests().is_empty());
    assert_eq!(store.pending_forwards().await?, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_errors_delay_forwards_but_lose_none() -> TestResult {
    let receiver = Receiver::start().await?;
    let memory = Arc::new(MemoryStore::new());
    let (client, secret) =
        client_with_endpoint(&memory, "client-1", "+14155550100", &receiver.url("/hook")).await?;
    receive(&memory, "+14155550100", "Yes").await?;
    // Two claims fail, then every try at recording the first attempt's
    // outcome: the lease expires and the forward is attempted again.
    let store = Arc::new(flaky::Flaky::new(memory.clone(), 2, 3));
    let config = WorkerConfig {
        lease: Duration::from_secs(2),
        ..config(4, 4)
    };
    let running = start(
        &store,
        RetrySchedule::default(),
        config,
        Arc::new(Counts::default()),
    );
    let [forward] = until_forwards(&memory, &client, ForwardStatus::Delivered, 1)
        .await?
        .try_into()
        .map_err(|f| format!("{f:?}"))?;
    running.stop().await?;

    assert_eq!(store.failed_claims(), 2);
    assert_eq!(store.failed_finishes(), 3);
    assert_eq!(forward.attempts, 2);
    let [first, second] = receiver
        .requests()
        .try_into()
        .map_err(|r| format!("{r:?}"))?;
    assert_eq!(first.headers["webhook-id"], second.headers["webhook-id"]);
    assert_eq!(first.body, second.body);
    Webhook::new(secret.expose())?.verify(&second.body, &second.headers)?;
    Ok(())
}

/// An attempt's slot is free once its request is over: while the store
/// holds the outcomes back, the worker goes on sending (the forwards stay
/// leased, so none is sent twice), and the outcomes are then recorded in
/// batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slots_do_not_wait_for_outcomes_to_be_recorded() -> TestResult {
    let receiver = Receiver::start().await?;
    let memory = Arc::new(MemoryStore::new());
    let (client, _) =
        client_with_endpoint(&memory, "client-1", "+14155550100", &receiver.url("/hook")).await?;
    let store = Arc::new(flaky::Flaky::new(memory.clone(), 0, 0));
    store.hold_outcomes();
    let running = start(
        &store,
        RetrySchedule::default(),
        config(4, 4),
        Arc::new(Counts::default()),
    );
    for i in 0..40 {
        receive(&memory, "+14155550100", &format!("reply {i}")).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.requests().len() < 12 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent_while_held = receiver.requests().len();
    assert!(
        sent_while_held >= 12,
        "only {sent_while_held} requests with 4 slots while no outcome was recorded"
    );
    assert!(
        forwards(&memory, &client, Some(ForwardStatus::Delivered))
            .await?
            .is_empty(),
        "no outcome recorded yet"
    );

    store.record_outcomes();
    until_forwards(&memory, &client, ForwardStatus::Delivered, 40).await?;
    running.stop().await?;
    let requests = receiver.requests();
    let ids: HashSet<_> = requests.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert_eq!((requests.len(), ids.len()), (40, 40), "each sent once");
    let batches = store.batches();
    assert_eq!(batches.iter().sum::<usize>(), 40);
    assert!(
        batches.iter().any(|n| *n > 1),
        "outcomes that waited are recorded together: {batches:?}"
    );
    Ok(())
}

/// Any concurrency a flag can give is taken as it is: nothing is sized by
/// it up front.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_concurrency_runs() -> TestResult {
    let receiver = Receiver::start().await?;
    let store = Arc::new(MemoryStore::new());
    let (client, _) =
        client_with_endpoint(&store, "client-1", "+14155550100", &receiver.url("/hook")).await?;
    let running = start(
        &store,
        RetrySchedule::default(),
        config(u32::MAX, 4),
        Arc::new(Counts::default()),
    );
    receive(&store, "+14155550100", "Yes").await?;
    until_forwards(&store, &client, ForwardStatus::Delivered, 1).await?;
    running.stop().await?;
    assert_eq!(receiver.requests().len(), 1);
    Ok(())
}
