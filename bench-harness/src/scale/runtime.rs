//! The simulated runtime: processes owned by pinned schedulers, named in a `Unique`
//! registry and subscribed to topics in a `Duplicate` one, and the three phases that drive
//! them.
//!
//! A process is a 16-byte record: its state word (the pid of its current incarnation, plus
//! flags while it crashes or starts) and its mailbox, a delivery counter. A pid carries its
//! incarnation (generation) above the process index, so that a checker can tell whether a
//! pid a lookup returned had already been reported down:
//!
//! - a restart stores the new incarnation's state only after `process_down` of the old one
//!   returned in both registries, and stamps the record with a global down clock;
//! - a send reads the target's state before its lookup: a pid older than that state was
//!   reported down before the lookup started, a *stale lookup*;
//! - a broadcast reads the down clock before `dispatch`: an entry whose incarnation was
//!   stamped down at or before that reading is stale.
//!
//! The mailbox itself (the registry's value, [`Inbox`]) runs the same check on the
//! incarnation it belongs to, so a message that lands in a reported-down process's
//! mailbox is counted as a *dead delivery*, not delivered. Both counts must end at 0; the
//! checks can miss a race (a restart twice over during one broadcast), never invent one.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use indicatif::ProgressBar;
use regent::{Duplicate, Mailbox, PartitionBy, Pid, SendError, Unique};

use super::zipf::{mix, SplitMix64, Zipf};
use crate::peers::Hasher;
use crate::runner::Latency;
use crate::workload::Keys;

/// One in this many spawns, exits and steady operations is timed on its own (all of a
/// sampled spawn's registrations, each separately).
const SAMPLE_EVERY: usize = 16;

/// Operations between progress updates and deadline checks.
const BATCH: usize = 4096;

/// Points in the latency-during-growth series.
pub const GROWTH_POINTS: usize = 40;

/// Processes per topic key on average (each process joins `topics` of them), so the
/// number of topics grows with the run.
pub const PROCESSES_PER_TOPIC: usize = 64;

/// The Zipf exponent of topic popularity: 1.0, the classic skew.
pub const ZIPF_EXPONENT: f64 = 1.0;

const INDEX_BITS: u32 = 40;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// The incarnation is crashing: it may or may not be down yet in the registries.
const CRASHING: u64 = 1 << 62;
/// The incarnation is registering its name and topics.
const STARTING: u64 = 1 << 63;
const FLAGS: u64 = CRASHING | STARTING;

fn pid_of(generation: u64, index: usize) -> u64 {
    (generation << INDEX_BITS) | index as u64
}

fn generation(word: u64) -> u64 {
    (word & !FLAGS) >> INDEX_BITS
}

fn index(word: u64) -> usize {
    (word & INDEX_MASK) as usize
}

/// A process: owned by one scheduler, which alone writes its state.
#[derive(Debug, Default)]
pub struct Process {
    /// The current incarnation's pid, with [`CRASHING`] or [`STARTING`] while it changes.
    state: AtomicU64,
    /// Messages delivered, over all incarnations.
    mailbox: AtomicU32,
    /// The down clock when the previous incarnation was reported down.
    down_stamp: AtomicU32,
}

/// The value every registration holds: the mailbox of one incarnation, named by its pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inbox(u64);

impl Inbox {
    /// The mailbox of the incarnation `pid`.
    #[must_use]
    pub const fn new(pid: u64) -> Self {
        Self(pid)
    }
}

/// A message sent by name, with what its sender saw of the target before the lookup.
struct Letter<'a> {
    procs: &'a [Process],
    /// The target's state word, read before the lookup.
    seen: u64,
    tally: &'a mut Tally,
}

impl<'a> Mailbox<Letter<'a>> for Inbox {
    fn send(&self, letter: Letter<'a>) -> Result<(), Letter<'a>> {
        let tally = letter.tally;
        tally.reached = self.0;
        let target = letter.procs.get(index(self.0));
        match target {
            Some(target) if index(self.0) == index(letter.seen) => {
                // A newer incarnation was stored before the send began, so this one had
                // been reported down: the message lands in a dead process's mailbox.
                if generation(self.0) < generation(letter.seen) {
                    tally.dead += 1;
                } else {
                    target.mailbox.fetch_add(1, Ordering::Relaxed);
                    tally.delivered += 1;
                }
            }
            // Another process's mailbox under this name, or no process's at all.
            _ => tally.wrong += 1,
        }
        Ok(())
    }
}

/// Counts kept by each scheduler during the steady phase, summed afterwards.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tally {
    pub sends: u64,
    pub broadcasts: u64,
    pub restarts: u64,
    /// Messages that reached a live mailbox (sends and broadcast deliveries).
    pub delivered: u64,
    /// Lookups and dispatches that returned a pid reported down before they started.
    pub stale: u64,
    /// Messages that reached the mailbox of an incarnation reported down before the send.
    pub dead: u64,
    /// Sends that found no owner because the target was restarting: expected.
    pub restarting: u64,
    /// Sends that found no owner although the target was alive throughout: a lost name.
    pub lost: u64,
    /// Results no correct registry returns (a wrong owner, value or count).
    pub wrong: u64,
    /// The pid whose mailbox the last send reached.
    reached: u64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.sends += other.sends;
        self.broadcasts += other.broadcasts;
        self.restarts += other.restarts;
        self.delivered += other.delivered;
        self.stale += other.stale;
        self.dead += other.dead;
        self.restarting += other.restarting;
        self.lost += other.lost;
        self.wrong += other.wrong;
    }
}

/// What the run is made of, fixed before it starts.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub processes: usize,
    pub threads: usize,
    pub partitions: Option<usize>,
    pub partition_by: PartitionBy,
    /// Topics each process joins.
    pub topics: usize,
    /// Distinct topics.
    pub topic_keys: usize,
    /// Share of steady operations that crash and restart a process.
    pub churn: f64,
    /// Share of steady operations that broadcast to a topic.
    pub broadcasts: f64,
    pub seconds: f64,
    pub seed: u64,
}

/// The schedulers' shared world: the registries and the process table.
#[derive(Debug)]
pub struct World {
    pub unique: Unique<u64, Inbox, Pid, Hasher>,
    pub topics: Duplicate<u64, Inbox, Pid, Hasher>,
    procs: Box<[Process]>,
    /// Ticks once per incarnation reported down; see the module docs.
    down_clock: AtomicU32,
    plan: Plan,
    names: Keys,
    zipf: Zipf,
}

/// One phase's figures.
#[derive(Debug, Clone, Copy)]
pub struct PhaseRun {
    pub ops: u64,
    pub elapsed: Duration,
    pub latency: Latency,
    /// Operations that returned a wrong result.
    pub wrong: u64,
}

/// The steady phase's figures: overall, per operation kind, and its tally.
#[derive(Debug, Clone, Copy)]
pub struct SteadyRun {
    pub phase: PhaseRun,
    /// Latency of sends, broadcasts and restarts, in [`Kind`] order.
    pub kinds: [Latency; 3],
    pub tally: Tally,
}

/// The steady operations, in the order their latencies are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Send,
    Broadcast,
    Restart,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Send, Kind::Broadcast, Kind::Restart];

    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Kind::Send => "send",
            Kind::Broadcast => "broadcast",
            Kind::Restart => "restart",
        }
    }
}

/// Latency of registrations while the tables grew: the percentiles over the registrations
/// made while the number of spawned processes grew to `processes`.
#[derive(Debug, Clone, Copy)]
pub struct GrowthPoint {
    pub processes: usize,
    pub latency: Latency,
}

impl World {
    /// Empty registries (growing from their smallest size) and a process table of
    /// `plan.processes` never-started processes.
    #[must_use]
    pub fn new(plan: Plan) -> Self {
        let unique = Unique::<u64, Inbox, Pid>::builder();
        let topics = Duplicate::<u64, Inbox, Pid>::builder().partition_by(plan.partition_by);
        let (unique, topics) = match plan.partitions {
            Some(n) => (unique.partitions(n), topics.partitions(n)),
            None => (unique, topics),
        };
        Self {
            unique: unique.hasher(Hasher::default()).build(),
            topics: topics.hasher(Hasher::default()).build(),
            procs: std::iter::repeat_with(Process::default)
                .take(plan.processes)
                .collect(),
            down_clock: AtomicU32::new(0),
            plan,
            names: Keys::new(plan.processes),
            zipf: Zipf::new(plan.topic_keys, ZIPF_EXPONENT),
        }
    }

    /// Bytes of the process table (the simulated runtime, not the registries).
    #[must_use]
    pub fn process_table_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.procs)
    }

    /// The topic key of popularity rank `rank` (1 is the hottest).
    fn topic(&self, rank: usize) -> u64 {
        mix(self.plan.seed ^ 0x70_71C5 ^ (rank as u64).rotate_left(32))
    }

    /// The topics process `i` joins, into `out`: `plan.topics` Zipf draws, the same in
    /// every incarnation, distinct unless there are too few topics to draw from.
    fn topics_of(&self, i: usize, out: &mut Vec<u64>) {
        out.clear();
        let mut rng = SplitMix64::new(mix(self.plan.seed ^ i as u64));
        for _ in 0..self.plan.topics {
            let mut topic = self.topic(self.zipf.sample(&mut rng));
            for _ in 0..8 {
                if !out.contains(&topic) {
                    break;
                }
                topic = self.topic(self.zipf.sample(&mut rng));
            }
            out.push(topic);
        }
    }

    /// Registers the incarnation `pid` of process `i`: its name, then its topics.
    /// Returns how many registrations failed (the name was taken).
    fn start(&self, i: usize, pid: u64, topics: &mut Vec<u64>) -> u64 {
        let failed = u64::from(
            self.unique
                .register(Pid::new(pid), self.names.key(i), Inbox(pid))
                .is_err(),
        );
        self.topics_of(i, topics);
        for &topic in topics.iter() {
            self.topics.register(Pid::new(pid), topic, Inbox(pid));
        }
        failed
    }

    /// Phase 1: every scheduler spawns its processes in order; each registers its name
    /// and joins its topics. Writes the growth series to `growth`.
    pub fn spawn(&self, progress: &ProgressBar, growth: &mut Vec<GrowthPoint>) -> PhaseRun {
        let n = self.plan.processes;
        progress.set_length(n as u64);
        let workers = self.on_schedulers(|lo, hi, _| {
            let mut all = histogram(3);
            let mut buckets: Vec<_> = (0..GROWTH_POINTS).map(|_| histogram(2)).collect();
            let (mut topics, mut wrong) = (Vec::with_capacity(self.plan.topics), 0);
            let start = Instant::now();
            for i in lo..hi {
                let pid = pid_of(0, i);
                // Relaxed: spawning ends with the join of every scheduler.
                self.procs[i].state.store(pid, Ordering::Relaxed);
                if (i - lo) % SAMPLE_EVERY != 0 {
                    wrong += self.start(i, pid, &mut topics);
                } else {
                    let bucket = &mut buckets[(i - lo) * GROWTH_POINTS / (hi - lo)];
                    let mut timed = |f: &mut dyn FnMut()| {
                        let t = Instant::now();
                        f();
                        let nanos = nanos(t.elapsed());
                        all.saturating_record(nanos);
                        bucket.saturating_record(nanos);
                    };
                    timed(&mut || {
                        let name = self.names.key(i);
                        wrong += u64::from(
                            self.unique
                                .register(Pid::new(pid), name, Inbox(pid))
                                .is_err(),
                        );
                    });
                    self.topics_of(i, &mut topics);
                    for &topic in &topics {
                        timed(&mut || self.topics.register(Pid::new(pid), topic, Inbox(pid)));
                    }
                }
                if (i - lo + 1) % BATCH == 0 {
                    progress.inc(BATCH as u64);
                }
            }
            (start, Instant::now(), all, buckets, wrong)
        });
        progress.finish_and_clear();
        let mut all = histogram(3);
        let mut buckets: Vec<_> = (0..GROWTH_POINTS).map(|_| histogram(2)).collect();
        let mut wrong = 0;
        for (_, _, h, b, w) in &workers {
            all.add(h).expect("same bounds");
            for (sum, part) in buckets.iter_mut().zip(b) {
                sum.add(part).expect("same bounds");
            }
            wrong += w;
        }
        growth.clear();
        growth.extend(buckets.iter().enumerate().map(|(b, h)| GrowthPoint {
            processes: (b + 1) * n / GROWTH_POINTS,
            latency: Latency::of(h),
        }));
        PhaseRun {
            ops: (n * (1 + self.plan.topics)) as u64,
            elapsed: span(workers.iter().map(|w| (w.0, w.1))),
            latency: Latency::of(&all),
            wrong,
        }
    }

    /// Phase 2: for `plan.seconds`, every scheduler sends by name to random processes,
    /// broadcasts to random topics, and crashes and restarts its own processes.
    pub fn steady(&self, progress: &ProgressBar) -> SteadyRun {
        let plan = self.plan;
        let millis = (plan.seconds * 1e3) as u64;
        progress.set_length(millis);
        let threshold = |share: f64| (share * 18_446_744_073_709_551_616.0) as u64;
        let restart_below = threshold(plan.churn);
        let broadcast_below = threshold(plan.churn + plan.broadcasts);
        let workers = self.on_schedulers(|lo, hi, s| {
            let mut rng = SplitMix64::new(mix(plan.seed ^ 0x57EA_D700 ^ s as u64));
            let mut all = histogram(3);
            let mut kinds = [histogram(3), histogram(3), histogram(3)];
            let mut tally = Tally::default();
            let mut topics = Vec::with_capacity(plan.topics);
            let start = Instant::now();
            let deadline = start + Duration::from_secs_f64(plan.seconds);
            let mut ops = 0_u64;
            loop {
                for j in 0..BATCH {
                    let r = rng.next_u64();
                    let kind = if r < restart_below && hi > lo {
                        Kind::Restart
                    } else if r < broadcast_below {
                        Kind::Broadcast
                    } else {
                        Kind::Send
                    };
                    let t = (j % SAMPLE_EVERY == 0).then(Instant::now);
                    match kind {
                        Kind::Send => self.send(rng.below(plan.processes), &mut tally),
                        Kind::Broadcast => {
                            let rank = 1 + rng.below(plan.topic_keys);
                            self.broadcast(self.topic(rank), &mut tally);
                        }
                        Kind::Restart => {
                            self.restart(lo + rng.below(hi - lo), &mut topics, &mut tally)
                        }
                    }
                    if let Some(t) = t {
                        let nanos = nanos(t.elapsed());
                        all.saturating_record(nanos);
                        kinds[kind as usize].saturating_record(nanos);
                    }
                }
                ops += BATCH as u64;
                let now = Instant::now();
                if s == 0 {
                    progress.set_position(nanos(now - start) / 1_000_000);
                }
                if now >= deadline {
                    break (start, now, all, kinds, tally, ops);
                }
            }
        });
        progress.finish_and_clear();
        let mut all = histogram(3);
        let mut kinds = [histogram(3), histogram(3), histogram(3)];
        let (mut tally, mut ops) = (Tally::default(), 0);
        for (_, _, h, k, t, o) in &workers {
            all.add(h).expect("same bounds");
            for (sum, part) in kinds.iter_mut().zip(k) {
                sum.add(part).expect("same bounds");
            }
            tally.add(t);
            ops += o;
        }
        SteadyRun {
            phase: PhaseRun {
                ops,
                elapsed: span(workers.iter().map(|w| (w.0, w.1))),
                latency: Latency::of(&all),
                wrong: tally.wrong + tally.lost,
            },
            kinds: kinds.each_ref().map(Latency::of),
            tally,
        }
    }

    /// Sends a message by name to process `j`: `Unique::send`, a lookup and a delivery.
    fn send(&self, j: usize, tally: &mut Tally) {
        tally.sends += 1;
        let target = &self.procs[j];
        // Acquire: pairs with the Release stores in `restart`, so a newer incarnation seen
        // here means the older one's `process_down` returned before this send began.
        let seen = target.state.load(Ordering::Acquire);
        let letter = Letter {
            procs: &self.procs,
            seen,
            tally,
        };
        let sent = self
            .unique
            .send(&self.names.key(j), letter)
            .map_err(|e| matches!(e, SendError::NotRegistered(_)));
        match sent {
            Ok(pid) => {
                let pid = pid.get();
                if pid != tally.reached || index(pid) != j {
                    tally.wrong += 1;
                } else if generation(pid) < generation(seen) {
                    tally.stale += 1;
                }
            }
            Err(true) => {
                // Acquire: as above. A crash marks the process before its `process_down`,
                // whose removal this lookup observed, so a restart shows here.
                let after = target.state.load(Ordering::Acquire);
                if seen & FLAGS == 0 && after == seen {
                    tally.lost += 1;
                } else {
                    tally.restarting += 1;
                }
            }
            // `Inbox` never refuses a message.
            Err(false) => tally.wrong += 1,
        }
    }

    /// Delivers a message to every subscriber of `topic`: `Duplicate::dispatch`.
    fn broadcast(&self, topic: u64, tally: &mut Tally) {
        tally.broadcasts += 1;
        // Acquire: pairs with the AcqRel tick in `restart`: an incarnation stamped at or
        // before this reading was reported down before the dispatch began.
        let start = self.down_clock.load(Ordering::Acquire);
        self.topics.dispatch(&topic, |pid, inbox| {
            let pid = pid.get();
            let Some(target) = self.procs.get(index(pid)) else {
                tally.wrong += 1;
                return;
            };
            if inbox.0 != pid {
                tally.wrong += 1;
            } else if down_before(target, pid, start) {
                // The entry is stale, and the message would land in a dead mailbox.
                tally.stale += 1;
                tally.dead += 1;
            } else {
                target.mailbox.fetch_add(1, Ordering::Relaxed);
                tally.delivered += 1;
            }
        });
    }

    /// Process `j` (owned by the calling scheduler) crashes; its supervisor reports it down
    /// in both registries and restarts it under a new pid, which registers the same name
    /// and rejoins the same topics at once.
    fn restart(&self, j: usize, topics: &mut Vec<u64>, tally: &mut Tally) {
        tally.restarts += 1;
        let process = &self.procs[j];
        // Relaxed: only this scheduler writes the state.
        let old = process.state.load(Ordering::Relaxed);
        // Relaxed: `process_down` below publishes it with its removal (see `send`).
        process.state.store(old | CRASHING, Ordering::Relaxed);
        let names = self.unique.process_down(Pid::new(old));
        let memberships = self.topics.process_down(Pid::new(old));
        if names != 1 || memberships != self.plan.topics {
            tally.wrong += 1;
        }
        // AcqRel: the tick follows both `process_down`s; pairs with the Acquire load in
        // `broadcast`.
        let stamp = self
            .down_clock
            .fetch_add(1, Ordering::AcqRel)
            .wrapping_add(1);
        process.down_stamp.store(stamp, Ordering::Relaxed);
        let new = pid_of(generation(old) + 1, j);
        // Release: publishes the stamp and that `old` is down; pairs with the Acquire
        // loads in `send` and `down_before`.
        process.state.store(new | STARTING, Ordering::Release);
        tally.wrong += self.start(j, new, topics);
        // Release: as above.
        process.state.store(new, Ordering::Release);
    }

    /// Phase 3: every scheduler reports each of its processes down in both registries.
    pub fn teardown(&self, progress: &ProgressBar) -> PhaseRun {
        let n = self.plan.processes;
        progress.set_length(n as u64);
        let workers = self.on_schedulers(|lo, hi, _| {
            let mut all = histogram(3);
            let mut wrong = 0;
            let start = Instant::now();
            for i in lo..hi {
                // Relaxed: the steady phase ended with the join of every scheduler.
                let pid = Pid::new(self.procs[i].state.load(Ordering::Relaxed));
                let expected = |names: usize, memberships: usize| {
                    u64::from(names != 1 || memberships != self.plan.topics)
                };
                if (i - lo) % SAMPLE_EVERY != 0 {
                    let names = self.unique.process_down(pid);
                    wrong += expected(names, self.topics.process_down(pid));
                } else {
                    let t = Instant::now();
                    let names = self.unique.process_down(pid);
                    all.saturating_record(nanos(t.elapsed()));
                    let t = Instant::now();
                    let memberships = self.topics.process_down(pid);
                    all.saturating_record(nanos(t.elapsed()));
                    wrong += expected(names, memberships);
                }
                if (i - lo + 1) % BATCH == 0 {
                    progress.inc(BATCH as u64);
                }
            }
            (start, Instant::now(), all, wrong)
        });
        progress.finish_and_clear();
        let mut all = histogram(3);
        for w in &workers {
            all.add(&w.2).expect("same bounds");
        }
        PhaseRun {
            ops: 2 * n as u64,
            elapsed: span(workers.iter().map(|w| (w.0, w.1))),
            latency: Latency::of(&all),
            wrong: workers.iter().map(|w| w.3).sum(),
        }
    }

    /// Finishes the migrations spawning left in flight, so that memory figures count each
    /// table once. Growth is cooperative: a migration advances only as writers of its
    /// table help it, and joining an existing topic writes nothing to the topic table. So
    /// this registers and reports down throwaway processes (pids and names no process
    /// uses, fresh topics whose bags come and go) until no table migrates. Returns how
    /// many it took. Their tombstones change no byte figure.
    pub fn finish_migrations(&self) -> usize {
        const LIMIT: usize = 1 << 24;
        let n = self.plan.processes;
        for k in 0..LIMIT {
            if k % 64 == 0
                && self.unique.stats().migrations == 0
                && self.topics.stats().migrations == 0
            {
                return k;
            }
            let pid = Pid::new(pid_of(0, n + k % 4096));
            let _ = self
                .unique
                .register(pid, self.names.missing(k), Inbox(pid.get()));
            let topic = mix(self.plan.seed ^ 0xF1E5_0000_0000 ^ k as u64);
            self.topics.register(pid, topic, Inbox(pid.get()));
            self.unique.process_down(pid);
            self.topics.process_down(pid);
        }
        LIMIT
    }

    /// Messages in every mailbox; equals the deliveries counted by the senders.
    #[must_use]
    pub fn mailbox_total(&self) -> u64 {
        self.procs
            .iter()
            .map(|p| u64::from(p.mailbox.load(Ordering::Relaxed)))
            .sum()
    }

    /// Runs `work(lo, hi, s)` on `plan.threads` schedulers, scheduler `s` pinned to core
    /// `s` (round-robin) and owning processes `lo..hi`; returns their results in order.
    fn on_schedulers<R: Send>(&self, work: impl Fn(usize, usize, usize) -> R + Sync) -> Vec<R> {
        let (n, threads) = (self.plan.processes, self.plan.threads);
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let start_line = Barrier::new(threads);
        thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|s| {
                    let (cores, start_line, work) = (&cores, &start_line, &work);
                    scope.spawn(move || {
                        if let Some(&core) = cores.get(s % cores.len().max(1)) {
                            core_affinity::set_for_current(core);
                        }
                        start_line.wait();
                        work(s * n / threads, (s + 1) * n / threads, s)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("scheduler panicked"))
                .collect()
        })
    }
}

/// Whether the incarnation `pid` of `process` was stamped down at or before `start`. Only
/// the last restart's stamp is kept, so a process restarted twice since `pid` is not
/// judged (a missed race, never a false one).
fn down_before(process: &Process, pid: u64, start: u32) -> bool {
    // Acquire: pairs with the Release store in `restart`, so the stamp read below is the
    // one written before that state, or a later one.
    let state = process.state.load(Ordering::Acquire);
    if generation(state) != generation(pid) + 1 {
        return false;
    }
    let stamp = process.down_stamp.load(Ordering::Relaxed);
    // `stamp <= start` on a clock that may wrap.
    start.wrapping_sub(stamp) < 1 << 31
}

/// Bounds fixed up front so that recording never allocates.
fn histogram(significant_figures: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, significant_figures).expect("valid bounds")
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// From the first scheduler's start to the last one's end.
fn span(workers: impl Iterator<Item = (Instant, Instant)>) -> Duration {
    let (mut first, mut last) = (None::<Instant>, None::<Instant>);
    for (start, end) in workers {
        first = Some(first.map_or(start, |f| f.min(start)));
        last = Some(last.map_or(end, |l| l.max(end)));
    }
    match (first, last) {
        (Some(first), Some(last)) => last - first,
        _ => Duration::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::{generation, index, pid_of, CRASHING, STARTING};

    #[test]
    fn pids_carry_their_incarnation() {
        let pid = pid_of(3, 12_345);
        assert_eq!((generation(pid), index(pid)), (3, 12_345));
        for flags in [CRASHING, STARTING] {
            assert_eq!((generation(pid | flags), index(pid | flags)), (3, 12_345));
        }
        assert!(generation(pid_of(0, (1 << 40) - 1)) < generation(pid_of(1, 0)));
    }
}
