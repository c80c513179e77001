//! regent beside its peers under criterion, through the adapter trait: every phase of
//! `compare` (register, register conflict, lookup hit and miss, unregister, process_down,
//! the read mix) on two pinned threads. The key count comes from
//! `REGENT_BENCH_KEYS` (default 1M; suffixes k, M, G).

use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BenchmarkGroup, Criterion, SamplingMode, Throughput,
};
use indicatif::ProgressBar;
use regent_bench::alloc::Counting;
use regent_bench::count::Count;
use regent_bench::peers::{
    DashMapPeer, FlurryPeer, PapayaPeer, RegentPeer, Registry, RwLockPeer, SccPeer,
};
use regent_bench::workload::{Keys, Phase, State};

#[global_allocator]
static ALLOC: Counting = Counting;

const THREADS: usize = 2;

fn keys() -> Keys {
    let count = std::env::var("REGENT_BENCH_KEYS")
        .map_or(Ok(Count(1_000_000)), |s| s.parse())
        .expect("REGENT_BENCH_KEYS is a count such as 500k or 1M");
    Keys::new(count.0)
}

/// Times `phase` alone: tables are built outside the timed region, fresh where the phase
/// consumes them.
fn bench<R: Registry>(group: &mut BenchmarkGroup<'_, WallTime>, phase: Phase, keys: Keys) {
    let hidden = ProgressBar::hidden();
    let timed = |registry: &R, phase: Phase| {
        phase
            .run(registry, keys, THREADS, &hidden)
            .expect("the peer misbehaved")
            .elapsed
    };
    let populated = || {
        let registry = R::default();
        timed(&registry, Phase::Register);
        registry
    };
    match (phase.starts(), phase.leaves()) {
        (State::Empty, _) => group.bench_function(R::NAME, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| timed(&R::default(), phase)).sum())
        }),
        (State::Populated, State::Populated) => {
            let registry = populated();
            group.bench_function(R::NAME, |b| {
                b.iter_custom(|iters| (0..iters).map(|_| timed(&registry, phase)).sum())
            })
        }
        _ => group.bench_function(R::NAME, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| timed(&populated(), phase)).sum())
        }),
    };
}

fn suite(c: &mut Criterion, phase: Phase) {
    let keys = keys();
    let mut group = c.benchmark_group(phase.name());
    // One pass is a whole table's worth of operations: few, flat samples suffice.
    group
        .throughput(Throughput::Elements(keys.count() as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1));
    bench::<RegentPeer>(&mut group, phase, keys);
    bench::<DashMapPeer>(&mut group, phase, keys);
    bench::<SccPeer>(&mut group, phase, keys);
    bench::<PapayaPeer>(&mut group, phase, keys);
    bench::<FlurryPeer>(&mut group, phase, keys);
    bench::<RwLockPeer>(&mut group, phase, keys);
    group.finish();
}

fn register_benches(c: &mut Criterion) {
    suite(c, Phase::Register);
    suite(c, Phase::RegisterConflict);
}

fn lookup_benches(c: &mut Criterion) {
    suite(c, Phase::LookupHit);
    suite(c, Phase::LookupMiss);
    suite(c, Phase::ReadMix);
}

fn removal_benches(c: &mut Criterion) {
    suite(c, Phase::Unregister);
    suite(c, Phase::ProcessDown);
}

criterion_group!(benches, register_benches, lookup_benches, removal_benches);
criterion_main!(benches);
