//! The core: everything that decides and does, nothing that reads the environment, prints, or
//! exits. Commands in `crate::cmd` are thin layers over these modules.

pub mod alerts;
pub mod classify;
pub mod clean;
pub mod companies;
pub mod creds;
pub mod effects;
pub mod folder;
pub mod inspect;
pub mod level;
pub mod lock;
pub mod metrics;
pub mod monitor;
pub mod notify;
pub mod parallel;
pub mod plan;
pub mod records;
pub mod remove;
pub mod report;
pub mod restore;
pub mod rules;
pub mod state;
pub mod trash;
pub mod trigger;
pub mod util;
