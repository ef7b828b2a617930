//! The test servers: with REQUIRE_SERVICES=1 (what CI sets) a store test never passes without
//! the server it tests.

use crate::testenv::missing_service_verdict;

fn repo(rel: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)).unwrap()
}

/// Broke: `.ci/run` did not set REQUIRE_SERVICES, so PostgreSQL and Redis tests returned green
/// on a machine without the servers.
#[test]
fn ci_run_requires_services() {
    let ci = repo(".ci/run");
    assert!(
        ci.lines().any(|l| l.trim() == "export REQUIRE_SERVICES=1"),
        ".ci/run must export REQUIRE_SERVICES=1:\n{ci}"
    );
    let script = repo("scripts/test.sh");
    assert!(
        script.matches("REQUIRE_SERVICES:-}\" = 1").count() >= 2,
        "scripts/test.sh must fail on a missing PostgreSQL and a missing Redis when required"
    );
}

/// Broke: a test that found no server returned green.
#[test]
fn a_missing_server_fails_the_test_when_services_are_required() {
    let err = missing_service_verdict(true, "postgres", &"connection refused").unwrap_err();
    assert!(
        err.contains("postgres") && err.contains("connection refused"),
        "{err}"
    );
    assert_eq!(
        missing_service_verdict(false, "redis", &"connection refused"),
        Ok(())
    );
}

/// Every PostgreSQL and Redis helper goes through `service_missing`: none prints its own
/// SKIPPED line and returns.
#[test]
fn no_store_test_skips_on_its_own() {
    for file in ["tests/cli/stores.rs", "tests/cli/redis_store.rs"] {
        let text = repo(file);
        assert!(
            !text.contains("eprintln!(\"SKIPPED"),
            "{file} skips without asking service_missing"
        );
        assert!(text.contains("service_missing("), "{file}");
    }
}
