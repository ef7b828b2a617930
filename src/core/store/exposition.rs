//! A store's tenants as its server sees them, in the Prometheus text format (beside the store,
//! whose facts it shows, so `core::metrics` stays a leaf).

use crate::core::metrics::Exposition;

/// A store's tenants as its server sees them (Redis: keys, sampled bytes, orphans), for
/// `baileys-janitor-store.prom` beside the metrics file.
pub fn store_metrics(tenants: &[String], facts: &[super::TenantFacts]) -> Exposition {
    let mut e = Exposition::default();
    e.family(
        "baileys_janitor_store_keys",
        "gauge",
        "Keys the tenant holds on the store server (Redis: HLEN or counted keys).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        if let Some(k) = f.server_keys {
            e.sample("baileys_janitor_store_keys", &[("company", t)], k as f64);
        }
    }
    e.family(
        "baileys_janitor_store_bytes",
        "gauge",
        "Memory the tenant takes on the store server (Redis: MEMORY USAGE, sampled).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        if let Some(b) = f.server_bytes {
            e.sample("baileys_janitor_store_bytes", &[("company", t)], b as f64);
        }
    }
    e.family(
        "baileys_janitor_store_orphan",
        "gauge",
        "1 when the tenant is an orphan (its account is gone).",
    );
    for (t, f) in tenants.iter().zip(facts) {
        e.sample(
            "baileys_janitor_store_orphan",
            &[("company", t)],
            if f.orphan.is_some() { 1.0 } else { 0.0 },
        );
    }
    e
}
