//! Binary-level tests: real folders, real mtimes, the real binary.

mod testenv;

mod architecture;
mod cleanup;
mod fleet;
mod golden;
mod hardening;
mod hostile_state;
mod install_cron;
mod layers;
mod logging;
mod monitor;
mod mysql_store;
mod ops;
mod packaging;
mod prekeys;
pub mod redis_store;
mod services;
mod shared_redis;
mod shared_sql;
mod shared_sqlite;
mod status_restore;
mod store_pipeline;
pub mod stores;
mod tls;
mod trigger;
mod undo;
mod v7;
