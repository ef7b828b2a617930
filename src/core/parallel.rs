//! Companies are independent: work on them on several threads, hand the results on in input
//! order. Workers may run at most `WINDOW` items ahead of the consumer, so memory stays bounded
//! however many companies there are and however slow one of them is.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

const WINDOW: usize = 8;

/// Runs `work` on every item with `jobs` threads; calls `sink` with the results in item order.
pub fn for_each_ordered<T: Sync, R: Send>(
    items: &[T],
    jobs: usize,
    work: impl Fn(&T) -> R + Sync,
    mut sink: impl FnMut(&T, R),
) {
    let jobs = jobs.clamp(1, items.len().max(1));
    if jobs == 1 {
        for item in items {
            sink(item, work(item));
        }
        return;
    }
    let next = AtomicUsize::new(0);
    let consumed = Mutex::new(0usize);
    let moved_on = Condvar::new();
    let (tx, rx) = std::sync::mpsc::channel::<(usize, R)>();
    std::thread::scope(|s| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (next, consumed, moved_on, work) = (&next, &consumed, &moved_on, &work);
            s.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= items.len() {
                        break;
                    }
                    let mut done = consumed.lock().unwrap_or_else(|e| e.into_inner());
                    while i >= *done + WINDOW {
                        done = moved_on.wait(done).unwrap_or_else(|e| e.into_inner());
                    }
                    drop(done);
                    if tx.send((i, work(&items[i]))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut pending = BTreeMap::new();
        let mut want = 0;
        for (i, r) in rx {
            pending.insert(i, r);
            while let Some(r) = pending.remove(&want) {
                sink(&items[want], r);
                want += 1;
                *consumed.lock().unwrap_or_else(|e| e.into_inner()) = want;
                moved_on.notify_all();
            }
        }
    });
}

/// Threads worth using: the machine's cores, at most 4 (the work is mostly system calls).
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order_whatever_the_timing() {
        let items: Vec<u64> = (0..50).collect();
        let mut seen = Vec::new();
        for_each_ordered(
            &items,
            3,
            |&i| {
                std::thread::sleep(std::time::Duration::from_micros((50 - i) * 100));
                i * 2
            },
            |&i, r| {
                assert_eq!(r, i * 2);
                seen.push(i);
            },
        );
        assert_eq!(seen, items);
    }

    #[test]
    fn one_job_and_empty_input() {
        let mut n = 0;
        for_each_ordered(&[1, 2, 3], 1, |x| x + 1, |_, _| n += 1);
        assert_eq!(n, 3);
        for_each_ordered(&[] as &[u8], 4, |x| *x, |_, _| panic!("no items"));
    }
}
