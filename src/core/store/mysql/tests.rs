//! Against a real MySQL / MariaDB (`BAILEYS_JANITOR_TEST_MYSQL`, default
//! mysql://root@127.0.0.1:3306); each test works in a database of its own and drops it
//! afterwards. Without a server the tests say so and pass (scripts/test.sh starts one, or says
//! loudly that it skipped), unless REQUIRE_SERVICES=1: then they fail.

use super::*;
use crate::core::store::{KeyRef, Token};

fn admin_url() -> String {
    std::env::var("BAILEYS_JANITOR_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into())
}

/// The server of `url`, database `db` (options dropped).
fn with_database(url: &str, db: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority = rest.split(['/', '?']).next().unwrap();
    format!("{scheme}://{authority}/{db}")
}

/// A database of its own with mysql-baileys' exact table, dropped on drop.
struct Scratch {
    admin: Conn,
    db: String,
    url: String,
}

impl Scratch {
    fn new(engine: &str) -> Option<Scratch> {
        let admin_url = admin_url();
        let Ok(opts) = Opts::from_url(&admin_url) else {
            panic!("BAILEYS_JANITOR_TEST_MYSQL is not a mysql:// url");
        };
        let Ok(mut admin) = Conn::new(
            OptsBuilder::from_opts(opts).tcp_connect_timeout(Some(Duration::from_secs(2))),
        ) else {
            // `.ci/run` sets REQUIRE_SERVICES=1: there a missing server fails the test.
            assert!(
                std::env::var("REQUIRE_SERVICES").map_or(true, |v| v != "1"),
                "REQUIRE_SERVICES=1 but no MySQL answers at {}",
                redact_url(&admin_url)
            );
            eprintln!("SKIPPED: no MySQL at {}", redact_url(&admin_url));
            return None;
        };
        let db = format!(
            "bj_unit_{}_{:x}",
            std::process::id(),
            fingerprint(format!("{:?}", std::time::SystemTime::now()).as_bytes())
        );
        admin.query_drop(format!("CREATE DATABASE {db}")).unwrap();
        // mysql-baileys 1.5.4's own statement (lib/Mysql/index.js), engine as asked.
        admin
            .query_drop(format!(
                "CREATE TABLE {db}.`auth` (`session` varchar(50) NOT NULL, `id` varchar(80) NOT NULL, `value` LONGTEXT DEFAULT NULL, UNIQUE KEY `idxunique` (`session`,`id`), KEY `idxsession` (`session`), KEY `idxid` (`id`)) ENGINE={engine}"
            ))
            .unwrap();
        let url = with_database(&admin_url, &db);
        Some(Scratch { admin, db, url })
    }

    fn put(&mut self, session: &str, id: &str, value: &str) {
        self.admin
            .exec_drop(
                format!("INSERT INTO {}.auth (session, id, value) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE value = VALUES(value)", self.db),
                (session, id, value),
            )
            .unwrap();
    }

    fn hex(&mut self, session: &str, id: &str) -> Option<String> {
        self.admin
            .exec_first(
                format!(
                    "SELECT HEX(value) FROM {}.auth WHERE BINARY session = ? AND BINARY id = ?",
                    self.db
                ),
                (session, id),
            )
            .unwrap()
    }

    fn store(&self) -> MysqlStore {
        MysqlStore::connect(&self.url, &preset("mysql-baileys").unwrap(), false).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = self
            .admin
            .query_drop(format!("DROP DATABASE IF EXISTS {}", self.db));
    }
}

fn planned(key_type: &str, id: &str, value: &str) -> Planned {
    Planned {
        key: KeyRef {
            key_type: key_type.into(),
            id: id.into(),
        },
        token: Token::of(value, None),
    }
}

fn rows_of(store: &mut MysqlStore, tenant: &str) -> Vec<(String, String, String)> {
    let mut v = Vec::new();
    store
        .scan(tenant, &mut |r| {
            v.push((r.key_type.to_owned(), r.id.to_owned(), r.value.to_owned()))
        })
        .unwrap();
    v.sort();
    v
}

#[test]
fn urls_are_redacted_and_need_a_database() {
    assert_eq!(
        redact_url("mysql://app:s3cret@db.example:3307/wa"),
        "mysql://app@db.example:3307/wa"
    );
    assert_eq!(
        redact_url("mariadb://app:s3cret@db/wa"),
        "mysql://app@db:3306/wa"
    );
    let err = check_url("mysql://app:s3cret@db:3306").unwrap_err();
    assert!(
        err.contains("names no database") && !err.contains("s3cret"),
        "{err}"
    );
    assert!(
        check_url("mysql://app:s3cret@db:nope/wa")
            .unwrap_err()
            .contains("not valid")
    );
    assert!(check_url("mariadb://root@127.0.0.1/base").is_ok());
    for tls in [
        "ssl-mode=REQUIRED",
        "sslmode=require",
        "require_ssl=true",
        "tls=true",
    ] {
        let err = check_url(&format!("mysql://app:s3cret@db/wa?{tls}")).unwrap_err();
        assert!(err.contains("TLS for mysql:// is not supported"), "{err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
    assert!(check_url("mysql://root@localhost/base?socket=/run/mysqld/mysqld.sock").is_ok());
    // mysql-baileys' tableName: the janitor's own option, never handed to the driver.
    let l = layout(
        "mysql://app:s3cret@db/wa?table=wa_auth&prefer_socket=false",
        "mysql-baileys",
    )
    .unwrap();
    assert_eq!(l.table, "wa_auth");
    assert!(check_url("mysql://app@db/wa?table=wa_auth").is_ok());
    assert_eq!(
        layout("mysql://app@db/wa", "mysql-baileys").unwrap().table,
        "auth"
    );
    for bad in ["table=", "table=a%60b", "table=x;drop"] {
        let err = layout(&format!("mysql://app:s3cret@db/wa?{bad}"), "mysql-baileys").unwrap_err();
        assert!(
            err.contains("table= option") && !err.contains("s3cret"),
            "{err}"
        );
    }
    assert!(
        layout("mysql://app@db/wa", "waha")
            .unwrap_err()
            .contains("not a mysql layout")
    );
}

#[test]
fn lock_names_fit_mysql_and_differ_by_table_and_tenant() {
    let Some(s) = Scratch::new("MyISAM") else {
        return;
    };
    let mut a = s.store();
    let t = a.lock_name(Some(&"x".repeat(200)));
    assert!(t.len() <= 64, "{t}");
    assert_ne!(a.lock_name(Some("a")), a.lock_name(Some("b")));
    assert_ne!(a.lock_name(Some("a")), a.lock_name(None));
    a.lock_scope = "other.auth".into();
    assert_ne!(a.lock_name(Some("a")), s.store().lock_name(Some("a")));
}

#[test]
fn a_value_rewritten_only_in_case_after_planning_survives_myisam_and_innodb() {
    for engine in ["MyISAM", "InnoDB"] {
        let Some(mut s) = Scratch::new(engine) else {
            return;
        };
        let old = r#"{"keyPair":{"type":"Buffer","data":"AbCd"}}"#;
        s.put("acme", "creds", "{}");
        s.put("acme", "pre-key-1", old);
        s.put("acme", "pre-key-2", old);
        s.put("acme", "pre-key-3", old);
        let mut store = s.store();
        assert_eq!(store.transactional, engine == "InnoDB");
        assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
        // The app rewrites pre-key-2 with a value the table's collation calls equal, and
        // consumes pre-key-3, after the janitor planned.
        s.put("acme", "pre-key-2", &old.to_lowercase());
        s.admin
            .exec_drop(
                format!("DELETE FROM {}.auth WHERE id = 'pre-key-3'", s.db),
                (),
            )
            .unwrap();
        let mut trashed = Vec::new();
        let out = store
            .remove(
                "acme",
                &[
                    planned("pre-key", "1", old),
                    planned("pre-key", "2", old),
                    planned("pre-key", "3", old),
                ],
                &mut TrashTarget::Before(&mut |rows| {
                    trashed.extend_from_slice(rows);
                    Ok(())
                }),
            )
            .unwrap();
        assert_eq!(
            out,
            [
                RemoveOutcome::Removed {
                    bytes: old.len() as u64
                },
                RemoveOutcome::Changed,
                RemoveOutcome::Vanished
            ],
            "{engine}"
        );
        assert_eq!(s.hex("acme", "pre-key-1"), None);
        assert!(
            s.hex("acme", "pre-key-2").is_some(),
            "{engine}: the rewritten row survives"
        );
        assert_eq!(trashed.len(), 1);
        assert_eq!(trashed[0].value, old);

        // Restore: byte for byte, and never over a row that exists again.
        let before = hex_of(old);
        let back = store.restore("acme", &trashed).unwrap();
        assert_eq!(back, [RestoreOutcome::Restored]);
        assert_eq!(s.hex("acme", "pre-key-1"), Some(before));
        let again = store.restore("acme", &trashed).unwrap();
        assert_eq!(again, [RestoreOutcome::Exists]);
    }
}

fn hex_of(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02X}")).collect()
}

#[test]
fn a_failed_trash_write_removes_nothing() {
    for engine in ["MyISAM", "InnoDB"] {
        let Some(mut s) = Scratch::new(engine) else {
            return;
        };
        s.put("acme", "pre-key-1", "{}");
        let mut store = s.store();
        assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
        let err = store
            .remove(
                "acme",
                &[planned("pre-key", "1", "{}")],
                &mut TrashTarget::Before(&mut |_| Err(std::io::Error::other("disk full"))),
            )
            .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert!(s.hex("acme", "pre-key-1").is_some(), "{engine}");
    }
}

#[test]
fn tenants_are_exact_names_and_creds_stay_out_of_the_keys() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    s.put("acme", "creds", r#"{"me":{"id":"1@s.whatsapp.net"}}"#);
    s.put("acme", "session-5511.0", "{}");
    s.put("Acme", "session-5522.0", "{}");
    s.put("acme ", "pre-key-9", "{}");
    s.put("acme", "contacts", "[]");
    let mut store = s.store();
    let mut tenants = store.tenants().unwrap();
    tenants.sort();
    assert!(tenants.contains(&"Acme".to_owned()) && tenants.contains(&"acme".to_owned()));
    assert_eq!(
        rows_of(&mut store, "acme"),
        [
            ("".into(), "contacts".into(), "[]".into()),
            ("session".into(), "5511.0".into(), "{}".into())
        ]
    );
    assert_eq!(store.count("acme").unwrap(), 3);
    assert_eq!(store.count("Acme").unwrap(), 1);
    assert!(store.creds("acme").unwrap().is_some());
    assert!(store.creds("Acme").unwrap().is_none());
    // The table's unique key is case-blind: the app writing `Acme`'s session 5511 rewrites
    // `acme`'s row. Removing `Acme`'s session 5511 must not reach it.
    s.put("Acme", "session-5511.0", "{}");
    assert_eq!(store.lock_tenant("Acme").unwrap(), TenantLock::Acquired);
    let out = store
        .remove(
            "Acme",
            &[planned("session", "5511.0", "{}")],
            &mut TrashTarget::Before(&mut |_| Ok(())),
        )
        .unwrap();
    assert_eq!(out, [RemoveOutcome::Vanished]);
    assert!(s.hex("acme", "session-5511.0").is_some());
    let out = store
        .remove(
            "Acme",
            &[planned("session", "5522.0", "{}")],
            &mut TrashTarget::Before(&mut |_| Ok(())),
        )
        .unwrap();
    assert_eq!(out, [RemoveOutcome::Removed { bytes: 2 }]);
}

#[test]
fn tenant_locks_exclude_other_connections_and_die_with_the_holder() {
    let Some(s) = Scratch::new("MyISAM") else {
        return;
    };
    let mut a = s.store();
    let mut b = s.store();
    assert_eq!(a.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    match b.lock_tenant("acme").unwrap() {
        TenantLock::Busy(who) => assert!(who.contains("connection"), "{who}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(b.lock_tenant("other").unwrap(), TenantLock::Acquired);
    assert_eq!(a.lock_global().unwrap(), TenantLock::Acquired);
    assert!(matches!(b.lock_global().unwrap(), TenantLock::Busy(_)));
    a.unlock_tenant("acme");
    assert_eq!(b.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    b.unlock_tenant("acme");
    // The holder's connection ends: the server frees its locks at once.
    assert_eq!(a.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    drop(a);
    let mut c = s.store();
    let freed = (0..50).any(|_| {
        let got = c.lock_tenant("acme").unwrap() == TenantLock::Acquired;
        if !got {
            std::thread::sleep(Duration::from_millis(100));
        }
        got
    });
    assert!(freed, "the lock outlived its connection");
    assert_eq!(c.lock_global().unwrap(), TenantLock::Acquired);
}

#[test]
fn a_table_that_cannot_restore_byte_for_byte_is_refused() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    s.admin
        .query_drop(format!("ALTER TABLE {}.auth MODIFY `value` LONGBLOB", s.db))
        .unwrap();
    let err = MysqlStore::connect(&s.url, &preset("mysql-baileys").unwrap(), false)
        .err()
        .unwrap();
    assert!(err.is_configuration(), "{err}");
    assert!(err.to_string().contains("not text"), "{err}");
    s.admin
        .query_drop(format!("DROP TABLE {}.auth", s.db))
        .unwrap();
    let err = MysqlStore::connect(&s.url, &preset("mysql-baileys").unwrap(), false)
        .err()
        .unwrap();
    assert!(err.to_string().contains("table auth not found"), "{err}");
}

#[test]
fn a_store_that_does_not_hold_the_tenant_lock_removes_nothing() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    s.put("acme", "pre-key-1", "{}");
    let mut a = s.store();
    let mut b = s.store();
    let batch = [planned("pre-key", "1", "{}")];
    // Never locked, or locked by another connection (as after a silent reconnect).
    for holder in [false, true] {
        if holder {
            assert_eq!(b.lock_tenant("acme").unwrap(), TenantLock::Acquired);
        }
        let mut trashed = 0;
        let err = a
            .remove(
                "acme",
                &batch,
                &mut TrashTarget::Before(&mut |rows| {
                    trashed += rows.len();
                    Ok(())
                }),
            )
            .unwrap_err();
        assert!(err.to_string().contains("no longer held"), "{err}");
        assert_eq!(trashed, 0);
        assert!(s.hex("acme", "pre-key-1").is_some());
    }
    b.unlock_tenant("acme");
    assert_eq!(a.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    let out = a
        .remove("acme", &batch, &mut TrashTarget::Before(&mut |_| Ok(())))
        .unwrap();
    assert_eq!(out, [RemoveOutcome::Removed { bytes: 2 }]);
}

#[test]
fn a_read_only_store_cannot_write_even_if_asked() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    s.put("acme", "pre-key-1", "{}");
    let mut ro = MysqlStore::connect(&s.url, &preset("mysql-baileys").unwrap(), true).unwrap();
    assert_eq!(ro.count("acme").unwrap(), 1);
    assert_eq!(ro.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    let err = ro
        .remove(
            "acme",
            &[planned("pre-key", "1", "{}")],
            &mut TrashTarget::Before(&mut |_| Ok(())),
        )
        .unwrap_err();
    assert!(err.to_string().contains("READ ONLY"), "{err}");
    assert!(s.hex("acme", "pre-key-1").is_some());
    let row = TrashRow {
        key_type: "pre-key".into(),
        id: "2".into(),
        value: "{}".into(),
        columns: Default::default(),
    };
    assert!(ro.restore("acme", &[row]).is_err());
    assert_eq!(s.hex("acme", "pre-key-2"), None);
}

/// mysql-baileys 1.5.1 created `value json`. MariaDB's JSON is LONGTEXT with a validity check:
/// cleaned and restored like any text column. (MySQL's own JSON type is refused, exit 2.)
#[test]
fn mysql_baileys_1_5_1_json_column_on_mariadb_round_trips() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    s.admin
        .query_drop(format!(
            "ALTER TABLE {}.auth MODIFY `value` json DEFAULT NULL",
            s.db
        ))
        .unwrap();
    let ty: Option<String> = s
        .admin
        .exec_first(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'auth' AND COLUMN_NAME = 'value'",
            (s.db.as_str(),),
        )
        .unwrap();
    let value = r#"{"private":{"type":"Buffer","data":"AQ=="}}"#;
    s.put("acme", "pre-key-1", value);
    let connected = MysqlStore::connect(&s.url, &preset("mysql-baileys").unwrap(), false);
    if ty.as_deref() == Some("json") {
        let err = connected.err().unwrap();
        assert!(
            err.is_configuration() && err.to_string().contains("MODIFY value LONGTEXT"),
            "{err}"
        );
        return;
    }
    let mut store = connected.unwrap();
    let before = s.hex("acme", "pre-key-1");
    assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    let mut trashed = Vec::new();
    let out = store
        .remove(
            "acme",
            &[planned("pre-key", "1", value)],
            &mut TrashTarget::Before(&mut |rows| {
                trashed.extend_from_slice(rows);
                Ok(())
            }),
        )
        .unwrap();
    assert_eq!(
        out,
        [RemoveOutcome::Removed {
            bytes: value.len() as u64
        }]
    );
    assert_eq!(
        store.restore("acme", &trashed).unwrap(),
        [RestoreOutcome::Restored]
    );
    assert_eq!(s.hex("acme", "pre-key-1"), before);
}

/// The app rewrites a key after the janitor re-read it and wrote it to the trash, just before
/// the `DELETE`: on MyISAM the compare-and-delete must miss it, even when the new value differs
/// only in case (equal to the table's collation); on InnoDB the app's write waits for the batch.
#[test]
fn a_value_rewritten_between_the_re_read_and_the_delete_survives() {
    for engine in ["MyISAM", "InnoDB"] {
        let Some(mut s) = Scratch::new(engine) else {
            return;
        };
        let old = r#"{"keyPair":{"type":"Buffer","data":"AbCd"}}"#;
        let new = old.to_lowercase();
        s.put("acme", "pre-key-1", old);
        s.put("acme", "pre-key-2", old);
        let mut store = s.store();
        assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
        let db = s.db.clone();
        let admin = &mut s.admin;
        let mut app_write = None;
        let out = store
            .remove(
                "acme",
                &[planned("pre-key", "1", old), planned("pre-key", "2", old)],
                &mut TrashTarget::Before(&mut |rows| {
                    assert_eq!(rows.len(), 2, "{engine}: both still as planned at the re-read");
                    admin
                        .query_drop("SET SESSION innodb_lock_wait_timeout = 1")
                        .unwrap();
                    app_write = Some(admin.exec_drop(
                        format!("UPDATE {db}.auth SET value = ? WHERE session = 'acme' AND id = 'pre-key-2'"),
                        (new.as_str(),),
                    ));
                    Ok(())
                }),
            )
            .unwrap();
        let app_write = app_write.unwrap();
        if engine == "MyISAM" {
            app_write.unwrap();
            assert_eq!(
                out,
                [
                    RemoveOutcome::Removed {
                        bytes: old.len() as u64
                    },
                    RemoveOutcome::Changed
                ]
            );
            assert_eq!(
                s.hex("acme", "pre-key-2"),
                Some(hex_of(&new)),
                "the app's value stays"
            );
        } else {
            // Locked FOR UPDATE by the batch: the app waited (and here, gave up).
            assert!(
                app_write.is_err(),
                "{engine}: the app wrote into a locked batch"
            );
            assert_eq!(
                out,
                [
                    RemoveOutcome::Removed {
                        bytes: old.len() as u64
                    },
                    RemoveOutcome::Removed {
                        bytes: old.len() as u64
                    }
                ]
            );
        }
        assert_eq!(s.hex("acme", "pre-key-1"), None);
    }
}

/// MyISAM: the app rewrites rows after the re-read, while the trash is written, with values
/// the table's collation calls equal (a trailing space, another case): the binary
/// compare-and-delete keeps them; the untouched row goes.
#[test]
fn the_delete_keeps_rows_rewritten_after_the_re_read_even_with_collation_equal_values() {
    let Some(mut s) = Scratch::new("MyISAM") else {
        return;
    };
    s.put("acme", "pre-key-1", "v1");
    s.put("acme", "pre-key-2", "v2");
    s.put("acme", "pre-key-3", "ab");
    s.put("acme", "pre-key-4", "é");
    let mut store = s.store();
    assert_eq!(store.lock_tenant("acme").unwrap(), TenantLock::Acquired);
    let batch = [
        planned("pre-key", "1", "v1"),
        planned("pre-key", "2", "v2"),
        planned("pre-key", "3", "ab"),
        planned("pre-key", "4", "é"),
        planned("pre-key", "5", "gone"),
    ];
    let mut trashed = 0;
    let out = store
        .remove(
            "acme",
            &batch,
            &mut TrashTarget::Before(&mut |rows| {
                trashed += rows.len();
                s.put("acme", "pre-key-2", "v2 ");
                s.put("acme", "pre-key-3", "AB");
                Ok(())
            }),
        )
        .unwrap();
    assert_eq!(
        out,
        [
            RemoveOutcome::Removed { bytes: 2 },
            RemoveOutcome::Changed,
            RemoveOutcome::Changed,
            RemoveOutcome::Removed { bytes: 2 },
            RemoveOutcome::Vanished,
        ]
    );
    assert_eq!(trashed, 4);
    assert_eq!(s.hex("acme", "pre-key-1"), None);
    assert_eq!(s.hex("acme", "pre-key-2"), Some(hex_of("v2 ")));
    assert_eq!(s.hex("acme", "pre-key-3"), Some(hex_of("AB")));
    assert_eq!(s.hex("acme", "pre-key-4"), None);
    // Nothing of the batch left to re-read: a lost lock is still said as such.
    store.unlock_tenant("acme");
    let err = store
        .remove(
            "acme",
            &[planned("pre-key", "5", "gone")],
            &mut TrashTarget::Before(&mut |_| Ok(())),
        )
        .unwrap_err();
    assert!(err.to_string().contains("no longer held"), "{err}");
}
