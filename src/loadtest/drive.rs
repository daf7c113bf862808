//! The load loops. Closed loop: `connections` tasks, each sending its next request when its last
//! one is answered. Open loop: requests start at fixed intervals whatever the server does, and
//! each latency is measured from the request's *intended* start, so a stall shows up in the tail
//! instead of silently slowing the load (coordinated omission).
//!
//! Both loops start with a warm-up (`warmup`): its requests are sent, answered and verified like
//! any other, but kept out of the figures (rates, status mix, latencies), which describe the
//! steady state; the warm-up's own count and tail are reported beside them. What a cold start
//! costs (connections opened, caches filled) is real, but it is a different question from the
//! sustained rate the figures are about.
//!
//! Longer than 500 lines: the closed and the open loop share their bookkeeping (buckets,
//! verification hooks, the warm-up split) and read best side by side.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::client::{Connections, Request, Target};
use super::setup::{Plan, PlannedRequest};

/// Requests one open-loop thread keeps in flight at most; past it, a due request is counted as
/// `late` instead of piling up without bound in the generator.
const OPEN_LOOP_IN_FLIGHT_MAX: usize = 20_000;
/// Finished open-loop tasks are pruned from the generator's list once it holds this many.
const PRUNE_FIRST_AT: usize = 4_096;
/// Latencies are recorded in microseconds, up to a minute.
const LATENCY_MAX_US: u64 = 60_000_000;

#[derive(Debug, Clone, Copy)]
pub enum Load {
    Closed { connections: usize },
    Open { rate_per_sec: u64 },
}

impl Load {
    pub fn describe(&self) -> String {
        match self {
            Load::Closed { connections } => format!("closed loop, {connections} connections"),
            Load::Open { rate_per_sec } => format!("open loop, {rate_per_sec} req/s"),
        }
    }
}

/// Answers by class.
#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct Tally {
    pub ok_2xx: u64,
    pub conflict_409: u64,
    pub rate_limited_429: u64,
    pub overloaded_503: u64,
    pub other: u64,
    /// No answer (connection error or client time-out): the outcome is unknown.
    pub no_answer: u64,
    /// Open loop only: requests the generator could not start on time.
    pub late: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.ok_2xx += other.ok_2xx;
        self.conflict_409 += other.conflict_409;
        self.rate_limited_429 += other.rate_limited_429;
        self.overloaded_503 += other.overloaded_503;
        self.other += other.other;
        self.no_answer += other.no_answer;
        self.late += other.late;
    }

    pub fn answered(&self) -> u64 {
        self.ok_2xx + self.conflict_409 + self.rate_limited_429 + self.overloaded_503 + self.other
    }
}

/// What happened to each deal's orders.
#[derive(Debug, Default, Clone, Copy)]
pub struct DealTally {
    pub created: u64,
    pub sold_out: u64,
    pub no_answer: u64,
}

#[derive(Debug, Default, Clone, Copy, serde::Serialize)]
pub struct SecondBucket {
    /// Requests sent in this second (by when they were meant to go) that were answered.
    pub answered: u64,
    pub ok_2xx: u64,
    pub conflict_409: u64,
}

/// Everything a run recorded.
pub struct RunResult {
    /// The measured window (after the warm-up): the requests counted were meant to be sent in it.
    pub elapsed: Duration,
    pub warmup: Duration,
    /// The warm-up's requests and their latencies, µs.
    pub warmup_tally: Tally,
    pub warmup_latency: Histogram<u64>,
    /// Orders created by requests of the measured window.
    pub created_measured: u64,
    /// The measured window's requests only (the warm-up's are in `warmup_*`).
    pub tally: Tally,
    /// Every request's latency, µs.
    pub latency: Histogram<u64>,
    /// Orders only, µs.
    pub order_latency: Histogram<u64>,
    /// How late the generator itself was, µs: from each request's intended start to the
    /// moment it began sending it (before waiting for a connection). Part of every latency
    /// above; an open loop's tail that is the generator's own shows here (a closed loop sends
    /// each request when it is meant to: zero).
    pub send_lag: Histogram<u64>,
    pub per_second: Vec<SecondBucket>,
    pub created_ids: Vec<i64>,
    pub per_deal: Vec<DealTally>,
    /// Offset of the last 201, for orders per second while selling.
    pub last_created_at: Option<Duration>,
    /// CPU the generator's load threads used over the measured window (Linux; zero where the
    /// threads' times cannot be read): what a request costs the generator itself.
    pub generator_cpu: Duration,
}

impl RunResult {
    fn empty(deals: usize) -> Self {
        Self {
            elapsed: Duration::ZERO,
            warmup: Duration::ZERO,
            warmup_tally: Tally::default(),
            warmup_latency: histogram(),
            created_measured: 0,
            tally: Tally::default(),
            latency: histogram(),
            order_latency: histogram(),
            send_lag: histogram(),
            per_second: Vec::new(),
            created_ids: Vec::new(),
            per_deal: vec![DealTally::default(); deals],
            last_created_at: None,
            generator_cpu: Duration::ZERO,
        }
    }

    fn merge(&mut self, other: RunResult) {
        self.tally.add(&other.tally);
        self.warmup_tally.add(&other.warmup_tally);
        self.warmup_latency
            .add(&other.warmup_latency)
            .expect("same histogram bounds");
        self.created_measured += other.created_measured;
        self.latency
            .add(&other.latency)
            .expect("same histogram bounds");
        self.order_latency
            .add(&other.order_latency)
            .expect("same histogram bounds");
        self.send_lag
            .add(&other.send_lag)
            .expect("same histogram bounds");
        if self.per_second.len() < other.per_second.len() {
            self.per_second
                .resize(other.per_second.len(), SecondBucket::default());
        }
        for (mine, theirs) in self.per_second.iter_mut().zip(&other.per_second) {
            mine.answered += theirs.answered;
            mine.ok_2xx += theirs.ok_2xx;
            mine.conflict_409 += theirs.conflict_409;
        }
        self.created_ids.extend(other.created_ids);
        for (mine, theirs) in self.per_deal.iter_mut().zip(&other.per_deal) {
            mine.created += theirs.created;
            mine.sold_out += theirs.sold_out;
            mine.no_answer += theirs.no_answer;
        }
        self.last_created_at = self.last_created_at.max(other.last_created_at);
        self.generator_cpu += other.generator_cpu;
    }

    pub fn created(&self) -> u64 {
        self.per_deal.iter().map(|deal| deal.created).sum()
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, 3).expect("valid histogram bounds")
}

/// Counters the progress line reads while the run goes on.
#[derive(Default)]
struct Progress {
    sent: AtomicU64,
    ok_2xx: AtomicU64,
    conflict_409: AtomicU64,
    status_5xx: AtomicU64,
    other: AtomicU64,
}

/// One request's outcome.
struct Outcome {
    status: Option<u16>,
    created_id: Option<i64>,
    sold_out: bool,
}

/// Runs the plan for `warmup` and then `duration` on `threads` generator threads and merges what
/// they recorded. The requests go to the `bases` in turn (a cluster's nodes).
pub async fn run(
    bases: &[String],
    plan: &Plan,
    load: Load,
    warmup: Duration,
    duration: Duration,
    threads: usize,
) -> Result<RunResult, String> {
    let threads = threads.max(1);
    let targets = Connections::resolve(bases).await?;
    let progress = Arc::new(Progress::default());
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let sequence = Arc::new(AtomicU64::new(0));
    // The threads hand their results back over channels that this task awaits: blocking this
    // thread in `join` would stall every socket registered with its runtime (an engine running
    // in the same process keeps store connections there — seen as a hung Postgres commit).
    let mut workers = Vec::new();
    for thread in 0..threads {
        let (targets, plan, progress, sequence) = (
            targets.clone(),
            plan.clone(),
            progress.clone(),
            sequence.clone(),
        );
        let share = match load {
            Load::Closed { connections } => Load::Closed {
                connections: split(connections, threads, thread),
            },
            Load::Open { rate_per_sec } => Load::Open {
                rate_per_sec: split(rate_per_sec as usize, threads, thread) as u64,
            },
        };
        let (sender, receiver) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let result = actix_web::rt::System::new().block_on(drive_thread(
                targets,
                plan,
                share,
                Window::new(started, warmup, duration),
                sequence,
                progress,
            ));
            let _ = sender.send(result);
        });
        workers.push(receiver);
    }
    let ticker = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || print_progress(&progress, &done, started))
    };
    let mut result = RunResult::empty(plan.deal_ids().len());
    for worker in workers {
        result.merge(worker.await.expect("a load thread panicked"));
    }
    done.store(true, Ordering::SeqCst);
    let _ = actix_web::rt::task::spawn_blocking(move || ticker.join()).await;
    result.warmup = warmup;
    // The figures count the requests meant to go out inside the measured window, so they are
    // divided by that window — not by the time the last answers took to drain after it.
    result.elapsed = duration;
    Ok(result)
}

/// When a run starts, when its measured part starts, and when it ends.
#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    measured_from: Instant,
    deadline: Instant,
}

impl Window {
    fn new(started: Instant, warmup: Duration, duration: Duration) -> Self {
        Self {
            started,
            measured_from: started + warmup,
            deadline: started + warmup + duration,
        }
    }
}

fn split(total: usize, parts: usize, index: usize) -> usize {
    total / parts + usize::from(index < total % parts)
}

fn print_progress(progress: &Progress, done: &AtomicBool, started: Instant) {
    let mut last = (Instant::now(), 0u64);
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(250));
        if last.0.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let sent = progress.sent.load(Ordering::Relaxed);
        let rate = (sent - last.1) as f64 / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), sent);
        // On a terminal one line rewritten in place; in a log file a line each second.
        let (start, end) = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            ("\r", "   ")
        } else {
            ("", "\n")
        };
        eprint!(
            "{start}   {:>5.1} s  sent {sent:>9}  2xx {:>9}  409 {:>9}  5xx {:>7}  other {:>6}  {rate:>8.0} req/s{end}",
            started.elapsed().as_secs_f64(),
            progress.ok_2xx.load(Ordering::Relaxed),
            progress.conflict_409.load(Ordering::Relaxed),
            progress.status_5xx.load(Ordering::Relaxed),
            progress.other.load(Ordering::Relaxed),
        );
    }
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!();
    }
}

async fn drive_thread(
    targets: Vec<Target>,
    plan: Plan,
    load: Load,
    window: Window,
    sequence: Arc<AtomicU64>,
    progress: Arc<Progress>,
) -> RunResult {
    let recorder = Rc::new(RefCell::new(RunResult::empty(plan.deal_ids().len())));
    let (started, deadline) = (window.started, window.deadline);
    let context = Rc::new(Context {
        connections: Connections::new(&targets, Duration::from_secs(30)),
        plan,
        window,
        progress,
        recorder: recorder.clone(),
    });
    // This thread's CPU over the measured window, read on this thread when it opens and closes.
    let cpu = {
        let measured_from = window.measured_from;
        actix_web::rt::spawn(async move {
            actix_web::rt::time::sleep_until(measured_from.into()).await;
            let from = thread_cpu();
            actix_web::rt::time::sleep_until(deadline.into()).await;
            Some(thread_cpu()?.saturating_sub(from?))
        })
    };
    match load {
        Load::Closed { connections } => {
            let mut tasks = Vec::with_capacity(connections);
            for _ in 0..connections {
                let (context, sequence) = (context.clone(), sequence.clone());
                tasks.push(actix_web::rt::spawn(async move {
                    while Instant::now() < deadline {
                        let n = sequence.fetch_add(1, Ordering::Relaxed);
                        let intended = Instant::now();
                        context.send_and_record(n, intended).await;
                    }
                }));
            }
            for task in tasks {
                let _ = task.await;
            }
        }
        Load::Open { rate_per_sec } if rate_per_sec > 0 => {
            let interval = Duration::from_secs_f64(1.0 / rate_per_sec as f64);
            let in_flight = Rc::new(std::cell::Cell::new(0usize));
            let mut tasks = Vec::new();
            let mut prune_at = PRUNE_FIRST_AT;
            for i in 0u64.. {
                let intended = started + interval.mul_f64(i as f64);
                if intended >= deadline {
                    break;
                }
                actix_web::rt::time::sleep_until(intended.into()).await;
                if in_flight.get() >= OPEN_LOOP_IN_FLIGHT_MAX {
                    context.recorder.borrow_mut().tally.late += 1;
                    continue;
                }
                in_flight.set(in_flight.get() + 1);
                let (context, in_flight, n) = (
                    context.clone(),
                    in_flight.clone(),
                    sequence.fetch_add(1, Ordering::Relaxed),
                );
                tasks.push(actix_web::rt::spawn(async move {
                    context.send_and_record(n, intended).await;
                    in_flight.set(in_flight.get() - 1);
                }));
                if tasks.len() >= prune_at {
                    tasks.retain(|task| !task.is_finished());
                    // Scan again only once the list has doubled: with thousands of requests in
                    // flight (a server falling behind), pruning at every request made the
                    // generator itself the bottleneck — O(in flight) work per request.
                    prune_at = (tasks.len() * 2).max(PRUNE_FIRST_AT);
                }
            }
            for task in tasks {
                let _ = task.await;
            }
        }
        Load::Open { .. } => {}
    }
    let cpu = cpu.await.ok().flatten().unwrap_or_default();
    recorder.borrow_mut().generator_cpu = cpu;
    drop(context);
    Rc::try_unwrap(recorder)
        .map(RefCell::into_inner)
        .unwrap_or_else(|_| panic!("every load task finished"))
}

/// This thread's CPU time so far (user and system), from `/proc/thread-self/stat`.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // The fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // The kernel's clock tick for these fields (USER_HZ) is 100 on Linux.
    Some(Duration::from_millis(ticks * 10))
}

struct Context {
    /// This thread's connections to the targets (the base URLs, requests to each in turn).
    connections: Connections,
    plan: Plan,
    window: Window,
    progress: Arc<Progress>,
    recorder: Rc<RefCell<RunResult>>,
}

impl Context {
    async fn send_and_record(&self, sequence: u64, intended: Instant) {
        let request = self.plan.request(sequence);
        let deal_index = request.deal_index;
        self.progress.sent.fetch_add(1, Ordering::Relaxed);
        let target = (sequence % self.connections.targets() as u64) as usize;
        let sending = Instant::now();
        let outcome = send(&self.connections, target, request).await;
        let now = Instant::now();
        let latency_us = (now - intended).as_micros().min(u128::from(LATENCY_MAX_US)) as u64;
        let measured = intended >= self.window.measured_from;
        let mut r = self.recorder.borrow_mut();
        if measured {
            let lag_us = sending.saturating_duration_since(intended).as_micros();
            r.send_lag
                .saturating_record(lag_us.min(u128::from(LATENCY_MAX_US)) as u64);
            r.latency.saturating_record(latency_us.max(1));
            if deal_index.is_some() {
                r.order_latency.saturating_record(latency_us.max(1));
            }
        } else {
            r.warmup_latency.saturating_record(latency_us.max(1));
        }
        // By when the request was meant to go, so that the last second holds the requests sent
        // in it (answered a little later or not), not a sliver of late answers.
        let second = intended
            .saturating_duration_since(self.window.started)
            .as_secs() as usize;
        if r.per_second.len() <= second {
            r.per_second.resize(second + 1, SecondBucket::default());
        }
        let progress = &self.progress;
        let tally = if measured {
            &mut r.tally
        } else {
            &mut r.warmup_tally
        };
        match outcome.status {
            None => tally.no_answer += 1,
            Some(200..=299) => {
                tally.ok_2xx += 1;
                progress.ok_2xx.fetch_add(1, Ordering::Relaxed);
            }
            Some(409) => {
                tally.conflict_409 += 1;
                progress.conflict_409.fetch_add(1, Ordering::Relaxed);
            }
            Some(429) => tally.rate_limited_429 += 1,
            Some(503) => {
                tally.overloaded_503 += 1;
                progress.status_5xx.fetch_add(1, Ordering::Relaxed);
            }
            Some(_) => {
                tally.other += 1;
                progress.other.fetch_add(1, Ordering::Relaxed);
            }
        }
        if outcome.status.is_some() {
            r.per_second[second].answered += 1;
        }
        match outcome.status {
            Some(200..=299) => r.per_second[second].ok_2xx += 1,
            Some(409) => r.per_second[second].conflict_409 += 1,
            _ => {}
        }
        if let Some(index) = deal_index {
            let deal = &mut r.per_deal[index];
            match (outcome.status, outcome.created_id) {
                (None, _) => deal.no_answer += 1,
                (Some(201), Some(_)) => deal.created += 1,
                _ if outcome.sold_out => deal.sold_out += 1,
                _ => {}
            }
            if let Some(id) = outcome.created_id {
                r.created_ids.push(id);
                r.last_created_at = Some(now - self.window.started);
                if measured {
                    r.created_measured += 1;
                }
            }
        }
    }
}

#[derive(serde::Deserialize)]
struct Created {
    id: i64,
}

async fn send(connections: &Connections, target: usize, request: PlannedRequest<'_>) -> Outcome {
    let request = Request {
        path: request.path,
        authorization: request.authorization.map(|value| value.as_bytes()),
        body: request.body.as_deref(),
    };
    let answered = connections
        .exchange(target, &request, |answer| {
            let created_id = (answer.status == 201)
                .then(|| {
                    serde_json::from_slice::<Created>(answer.body)
                        .ok()
                        .map(|c| c.id)
                })
                .flatten();
            let sold_out =
                answer.status == 409 && answer.body.windows(10).any(|w| w == b"\"SOLD_OUT\"");
            Outcome {
                status: Some(answer.status),
                created_id,
                sold_out,
            }
        })
        .await;
    answered.unwrap_or(Outcome {
        status: None,
        created_id: None,
        sold_out: false,
    })
}

impl super::args::LoadtestArgs {
    pub fn load(&self) -> Load {
        match self.rate {
            Some(rate) => Load::Open {
                rate_per_sec: rate.max(1),
            },
            None => Load::Closed {
                connections: self.connections.unwrap_or(256).max(1),
            },
        }
    }
}
