//! Binary-level tests: real folders, real mtimes, the real binary.

mod testenv;

mod cleanup;
mod fleet;
mod golden;
mod hardening;
mod install_cron;
mod logging;
mod monitor;
mod packaging;
mod prekeys;
mod redis_store;
mod status_restore;
mod stores;
mod trigger;
mod undo;
