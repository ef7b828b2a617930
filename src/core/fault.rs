//! Fault injection for the crash tests: the process kills itself with SIGKILL at a named step,
//! exactly as `kill -9` would, so a test can prove that a crash at any step leaves every key in
//! place, in the trash, or both, never neither (issue 23).
//!
//! Armed only by `BAILEYS_JANITOR_DEBUG_KILL_AT=<point>[:<nth>]` (read once by `main`, never by
//! the core): the `nth` time (default 1) execution reaches `point(<point>)`, the process dies.
//! `BAILEYS_JANITOR_DEBUG_KILL_AT=list` prints each point as it is passed, on stderr, so a test
//! can learn the steps of a run and then kill at every one. Unarmed, a point costs one atomic load.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static ARMED: AtomicBool = AtomicBool::new(false);
static PLAN: Mutex<Option<Plan>> = Mutex::new(None);

struct Plan {
    /// `None`: list every point passed instead of killing.
    point: Option<String>,
    nth: u64,
    seen: u64,
}

/// Arms the hook from the environment variable's value (`main` calls this once).
pub fn arm(spec: &str) {
    let plan = if spec == "list" {
        Plan {
            point: None,
            nth: 0,
            seen: 0,
        }
    } else {
        let (point, nth) = match spec.rsplit_once(':') {
            Some((p, n)) if n.parse::<u64>().is_ok() => (p, n.parse().unwrap_or(1)),
            _ => (spec, 1),
        };
        Plan {
            point: Some(point.to_owned()),
            nth: nth.max(1),
            seen: 0,
        }
    };
    *PLAN.lock().unwrap_or_else(|e| e.into_inner()) = Some(plan);
    ARMED.store(true, Ordering::Release);
}

/// A step a crash test may kill the process at. Names are `<where>.<step>`, e.g.
/// `pg.after_delete`, `store.after_batch`.
pub fn point(name: &str) {
    if !ARMED.load(Ordering::Acquire) {
        return;
    }
    let mut guard = PLAN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(plan) = guard.as_mut() else {
        return;
    };
    match &plan.point {
        None => eprintln!("fault point: {name}"),
        Some(p) if p == name => {
            plan.seen += 1;
            if plan.seen == plan.nth {
                eprintln!("fault point: {name}: killed (BAILEYS_JANITOR_DEBUG_KILL_AT)");
                let _ = rustix::process::kill_process(
                    rustix::process::getpid(),
                    rustix::process::Signal::KILL,
                );
            }
        }
        Some(_) => {}
    }
}
