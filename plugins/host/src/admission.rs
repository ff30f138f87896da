//! Admission: call slots, so that a call waits for room instead of crashing
//! into the instance pool's capacity.
//!
//! Each adapter has its own slots (`max_concurrent_calls`) and the engine has
//! one set shared by every adapter (`max_running_calls`), strictly below the
//! pool's capacity. A call takes its adapter's slot first and the engine's
//! second, so an adapter that saturates its own slots queues only its own
//! calls: it holds at most its own number of engine slots, and every other
//! adapter still finds room.

use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

/// A counting semaphore with a timed wait, for blocking callers (calls run on
/// the caller's thread; the gateway calls from its blocking pool).
#[derive(Debug)]
pub(crate) struct Slots {
    capacity: u32,
    used: Mutex<u32>,
    freed: Condvar,
}

/// A slot held until dropped.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    slots: &'a Slots,
}

impl Slots {
    /// `capacity` slots, all free.
    pub(crate) fn new(capacity: u32) -> Slots {
        Slots { capacity: capacity.max(1), used: Mutex::new(0), freed: Condvar::new() }
    }

    /// How many slots there are.
    pub(crate) fn capacity(&self) -> u32 {
        self.capacity
    }

    /// How many slots are taken now.
    pub(crate) fn in_use(&self) -> u32 {
        *self.used.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot, waiting for one until `deadline`; `None` if none came free.
    pub(crate) fn acquire_until(&self, deadline: Instant) -> Option<Permit<'_>> {
        // The counter is only ever changed under the lock and never left
        // inconsistent, so a poisoned lock still holds a true count.
        let mut used = self.used.lock().unwrap_or_else(PoisonError::into_inner);
        while *used >= self.capacity {
            let left = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero())?;
            used = self.freed.wait_timeout(used, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        *used += 1;
        Some(Permit { slots: self })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut used = self.slots.used.lock().unwrap_or_else(PoisonError::into_inner);
        *used = used.saturating_sub(1);
        drop(used);
        self.slots.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_full_set_of_slots_makes_callers_wait_until_one_is_freed_or_time_is_up() {
        let slots = Arc::new(Slots::new(2));
        let soon = || Instant::now() + Duration::from_millis(50);
        let a = slots.acquire_until(soon()).expect("free");
        let b = slots.acquire_until(soon()).expect("free");
        assert_eq!(slots.in_use(), 2);
        assert!(slots.acquire_until(soon()).is_none(), "full until the deadline");
        let waiter = {
            let slots = slots.clone();
            std::thread::spawn(move || {
                slots.acquire_until(Instant::now() + Duration::from_secs(10)).map(drop).is_some()
            })
        };
        std::thread::sleep(Duration::from_millis(20));
        drop(a);
        assert!(waiter.join().expect("thread"), "a freed slot is handed to a waiter");
        drop(b);
        assert_eq!(slots.in_use(), 0);
    }
}
