//! The core: everything that decides and does, nothing that reads the environment, prints, or
//! exits. Commands in `crate::cmd` are thin layers over these modules.

pub(crate) mod access;
pub(crate) mod alerts;
pub(crate) mod backup;
pub mod classify;
pub(crate) mod clean;
pub(crate) mod companies;
pub mod creds;
pub(crate) mod effects;
pub(crate) mod execute;
pub mod fault;
pub(crate) mod fleet;
pub(crate) mod folder;
pub(crate) mod inspect;
pub(crate) mod level;
pub(crate) mod lock;
pub(crate) mod manifest;
pub(crate) mod metrics;
pub(crate) mod monitor;
pub(crate) mod notify;
pub(crate) mod pairs;
pub(crate) mod parallel;
pub(crate) mod plan;
pub(crate) mod prekeys;
pub(crate) mod records;
pub(crate) mod remove;
pub(crate) mod report;
pub(crate) mod restore;
pub(crate) mod rules;
pub(crate) mod state;
pub(crate) mod store;
pub(crate) mod tally;
pub(crate) mod trash;
pub(crate) mod trigger;
pub(crate) mod util;
