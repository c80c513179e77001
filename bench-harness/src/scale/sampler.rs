//! Live bytes over the run, sampled by a thread of its own.
//!
//! The samples go into a buffer reserved before the run's baseline is read, and the
//! sampler never allocates: when the buffer fills, every other sample is dropped and the
//! interval doubles. So the timeline costs the leak accounting nothing, whatever the run's
//! length.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::alloc;

/// What the run was doing when a sample was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Building the process table and the empty registries.
    Setup,
    Spawn,
    Steady,
    Teardown,
    /// The registries dropped and reclamation settled.
    Dropped,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::Setup,
        Stage::Spawn,
        Stage::Steady,
        Stage::Teardown,
        Stage::Dropped,
    ];

    /// The name used in JSON and reports.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Stage::Setup => "setup",
            Stage::Spawn => "spawn",
            Stage::Steady => "steady",
            Stage::Teardown => "teardown",
            Stage::Dropped => "dropped",
        }
    }
}

/// One reading of the counting allocator.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Sample {
    /// Since the sampler started.
    pub seconds: f64,
    pub live_bytes: usize,
    pub stage: Stage,
}

/// The samples, at most `capacity` of them, evenly spaced.
#[derive(Debug)]
pub struct Timeline {
    samples: Vec<Sample>,
    every: Duration,
    next: Duration,
}

impl Timeline {
    /// Reserves room for `capacity` samples (at least 4), first taken `every` apart.
    #[must_use]
    pub fn new(capacity: usize, every: Duration) -> Self {
        Self {
            samples: Vec::with_capacity(capacity.max(4)),
            every,
            next: Duration::ZERO,
        }
    }

    /// Records `sample` if it is due, thinning the timeline first if it is full. One slot
    /// always stays free for [`Timeline::finish`].
    fn offer(&mut self, at: Duration, live_bytes: usize, stage: Stage) {
        if at < self.next {
            return;
        }
        if self.samples.len() + 1 >= self.samples.capacity() {
            let mut kept = 0;
            for i in (0..self.samples.len()).step_by(2) {
                self.samples[kept] = self.samples[i];
                kept += 1;
            }
            self.samples.truncate(kept);
            self.every *= 2;
        }
        self.samples.push(Sample {
            seconds: at.as_secs_f64(),
            live_bytes,
            stage,
        });
        self.next = at + self.every;
    }

    /// Appends the last reading, after the sampler stopped.
    pub fn finish(&mut self, at: Duration, live_bytes: usize, stage: Stage) {
        if self.samples.len() < self.samples.capacity() {
            self.samples.push(Sample {
                seconds: at.as_secs_f64(),
                live_bytes,
                stage,
            });
        }
    }

    /// The samples, oldest first.
    #[must_use]
    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

/// Shared between the run, which sets the stage, and the sampling thread.
#[derive(Debug)]
pub struct Sampler {
    start: Instant,
    stage: AtomicU8,
    stop: AtomicBool,
}

impl Default for Sampler {
    fn default() -> Self {
        Self {
            start: Instant::now(),
            stage: AtomicU8::new(Stage::Setup as u8),
            stop: AtomicBool::new(false),
        }
    }
}

impl Sampler {
    /// Time since the sampler was made.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// Tags the samples from now on with `stage`.
    pub fn enter(&self, stage: Stage) {
        self.stage.store(stage as u8, Ordering::Relaxed);
    }

    /// Ends [`Sampler::run`].
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Samples into `timeline` until [`Sampler::stop`]; run it on a thread of its own.
    pub fn run(&self, timeline: &mut Timeline) {
        while !self.stop.load(Ordering::Relaxed) {
            let stage = Stage::ALL[usize::from(self.stage.load(Ordering::Relaxed))];
            timeline.offer(self.elapsed(), alloc::live(), stage);
            thread::sleep(timeline.every.min(Duration::from_millis(20)));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{Stage, Timeline};

    #[test]
    fn thins_instead_of_growing() {
        let mut timeline = Timeline::new(8, Duration::from_millis(1));
        let capacity = timeline.samples.capacity();
        for ms in 0..1_000 {
            timeline.offer(Duration::from_millis(ms), ms as usize, Stage::Spawn);
        }
        timeline.finish(Duration::from_secs(2), 7, Stage::Dropped);
        assert_eq!(timeline.samples.capacity(), capacity);
        let samples = timeline.samples();
        assert!(samples.len() >= capacity / 2 && samples.len() <= capacity);
        assert!(samples.windows(2).all(|w| w[0].seconds < w[1].seconds));
        assert_eq!(samples.last().unwrap().stage, Stage::Dropped);
    }
}
