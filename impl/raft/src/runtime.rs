//! openraft's async runtime for kvstore: tokio's, with the random numbers openraft draws
//! (election timeouts) taken from a per-thread generator a test or simulation can seed.
//!
//! Invariants:
//! - Everything but the random numbers is [`TokioRuntime`]'s, unchanged.
//! - A thread whose generator was seeded with [`seed_thread_rng`] draws the same sequence for
//!   the same seed; an unseeded thread seeds itself once from the standard library's per-process
//!   random hasher keys (so production members still draw different timeouts).
//!
//! What this does not fix: tokio's `select!` (which openraft's core loop uses) picks among
//! ready branches in a random order tokio seeds itself, so a seeded run under a paused
//! current-thread runtime is reproducible only as far as those choices do not matter.

use std::cell::Cell;
use std::future::Future;
use std::hash::BuildHasher;
use std::time::Duration;

use openraft::{AsyncRuntime, OptionalSend, TokioRuntime};

thread_local! {
    static STATE: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Seeds this thread's generator: openraft's draws on this thread are then a function of
/// `seed` alone.
pub fn seed_thread_rng(seed: u64) {
    STATE.with(|state| state.set(Some(seed)));
}

fn self_seed() -> u64 {
    std::collections::hash_map::RandomState::new().hash_one(std::thread::current().id())
}

/// splitmix64: a full-period 64-bit generator with well-mixed outputs.
fn next_u64() -> u64 {
    STATE.with(|state| {
        let x = state
            .get()
            .unwrap_or_else(self_seed)
            .wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(Some(x));
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A handle on this thread's generator.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadRng;

impl rand_08::RngCore for ThreadRng {
    fn next_u32(&mut self) -> u32 {
        (next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        next_u64()
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(8) {
            let bytes = next_u64().to_le_bytes();
            for (d, s) in chunk.iter_mut().zip(bytes) {
                *d = s;
            }
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_08::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

/// tokio, with [`ThreadRng`] (see the module doc).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Runtime;

type Tokio = TokioRuntime;

impl AsyncRuntime for Runtime {
    type JoinError = <Tokio as AsyncRuntime>::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = <Tokio as AsyncRuntime>::JoinHandle<T>;
    type Sleep = <Tokio as AsyncRuntime>::Sleep;
    type Instant = <Tokio as AsyncRuntime>::Instant;
    type TimeoutError = <Tokio as AsyncRuntime>::TimeoutError;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = <Tokio as AsyncRuntime>::Timeout<R, T>;
    type ThreadLocalRng = ThreadRng;
    type OneshotSender<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotSender<T>;
    type OneshotReceiverError = <Tokio as AsyncRuntime>::OneshotReceiverError;
    type OneshotReceiver<T: OptionalSend> = <Tokio as AsyncRuntime>::OneshotReceiver<T>;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        Tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        Tokio::sleep(duration)
    }

    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        Tokio::sleep_until(deadline)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout(duration, future)
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Tokio::timeout_at(deadline, future)
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        Tokio::is_panic(join_error)
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        ThreadRng
    }

    fn oneshot<T>() -> (Self::OneshotSender<T>, Self::OneshotReceiver<T>)
    where
        T: OptionalSend,
    {
        Tokio::oneshot()
    }
}
