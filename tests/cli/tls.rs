//! TLS to PostgreSQL and Redis through the real binary, against throwaway servers these tests
//! start themselves (free ports, a CA made here with openssl, stopped on drop): a PostgreSQL
//! cluster with `ssl=on` whose pg_hba.conf accepts TLS only, and a `redis-server` listening on a
//! TLS port only. Without the binaries the tests say SKIPPED; with REQUIRE_SERVICES=1 (CI) a
//! missing binary fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::stores::assert_no_secret;
use crate::testenv::*;

fn required() -> bool {
    std::env::var("REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn skip(what: &str) {
    assert!(!required(), "REQUIRE_SERVICES=1 but {what}");
    eprintln!("!!! SKIPPED: {what} !!!");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A CA, a server certificate for `localhost` only (not 127.0.0.1), a client certificate, and a
/// second CA that signed nothing here.
struct Pki {
    dir: PathBuf,
}

impl Pki {
    fn new(dir: &Path) -> Option<Pki> {
        if Command::new("openssl").arg("version").output().is_err() {
            skip("tls tests (no openssl to make a test CA)");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let ossl = |args: &[&str]| run(Command::new("openssl").current_dir(dir).args(args));
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let (key, pem, subj) = (
                format!("{ca}.key"),
                format!("{ca}.pem"),
                format!("/CN=baileys-janitor test {ca}"),
            );
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            ossl(&a);
        }
        for (name, cn, ext) in [
            (
                "server",
                "localhost",
                "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
            ),
            (
                "client",
                "postgres",
                "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
            ),
        ] {
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            let (key, csr, pem, extf) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            let subj = format!("/CN={cn}");
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
            ossl(&a);
            ossl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &extf,
            ]);
        }
        use std::os::unix::fs::PermissionsExt;
        for k in ["ca.key", "other-ca.key", "server.key", "client.key"] {
            std::fs::set_permissions(dir.join(k), std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Some(Pki {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

fn as_postgres(sh: &str) -> Command {
    let mut c = if rustix::process::getuid().is_root() {
        let mut c = Command::new("su");
        c.args(["postgres", "-s", "/bin/sh", "-c", sh]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", sh]);
        c
    };
    c.env_remove("PGDATA");
    c
}

/// A throwaway PostgreSQL cluster: `ssl=on`, TLS-only pg_hba.conf, connections logged.
struct TlsPg {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
}

impl TlsPg {
    fn start(pki: &Pki, dir: &Path) -> Option<TlsPg> {
        let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|d| d.flatten().map(|e| e.path().join("bin")).max())
            .filter(|b| b.join("initdb").exists())
        else {
            skip("postgres tls tests (no initdb in /usr/lib/postgresql/*/bin)");
            return None;
        };
        std::fs::create_dir_all(dir).unwrap();
        let data = dir.join("data");
        if rustix::process::getuid().is_root() {
            run(Command::new("chown").arg("postgres").arg(dir));
        }
        run(&mut as_postgres(&format!(
            "'{}' -D '{}' -U postgres -A trust >/dev/null",
            bin.join("initdb").display(),
            data.display()
        )));
        for f in ["server.pem", "server.key", "ca.pem"] {
            std::fs::copy(pki.dir.join(f), data.join(f)).unwrap();
        }
        let port = free_port();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        use std::io::Write;
        writeln!(
            conf,
            "ssl = on\nssl_cert_file = 'server.pem'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.pem'\n\
             log_connections = on\nlisten_addresses = '127.0.0.1'\nport = {port}\n\
             unix_socket_directories = '{}'\nfsync = off",
            dir.display()
        )
        .unwrap();
        // TLS only: a plain TCP connection finds no pg_hba line and is refused. `certdb` also
        // asks for a client certificate signed by the test CA.
        std::fs::write(
            data.join("pg_hba.conf"),
            "local all all trust\n\
             hostssl pwdb all 127.0.0.1/32 scram-sha-256\n\
             hostssl certdb all 127.0.0.1/32 trust clientcert=verify-ca\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        if rustix::process::getuid().is_root() {
            run(Command::new("chown").arg("-R").arg("postgres").arg(dir));
        }
        run(&mut as_postgres(&format!(
            "'{}' -D '{}' -l '{}' -w start >/dev/null",
            bin.join("pg_ctl").display(),
            data.display(),
            dir.join("log").display()
        )));
        let pg = TlsPg {
            bin,
            dir: dir.to_owned(),
            port,
        };
        let admin = format!("host={} port={port} user=postgres", dir.display());
        let mut c = postgres::Client::connect(&format!("{admin} dbname=postgres"), postgres::NoTls)
            .unwrap();
        for sql in [
            "CREATE DATABASE certdb",
            "CREATE DATABASE pwdb",
            "CREATE ROLE janitor LOGIN PASSWORD 'hunter2-secret'",
        ] {
            c.batch_execute(sql).unwrap();
        }
        for db in ["postgres", "certdb", "pwdb"] {
            let mut c = postgres::Client::connect(&format!("{admin} dbname={db}"), postgres::NoTls)
                .unwrap();
            c.batch_execute(
                "CREATE TABLE whatsapp_auth (company_id TEXT PRIMARY KEY, creds JSONB NOT NULL,
                   created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW());
                 CREATE TABLE whatsapp_keys (company_id TEXT NOT NULL, key_type TEXT NOT NULL,
                   key_id TEXT NOT NULL, value JSONB NOT NULL, created_at TIMESTAMPTZ DEFAULT NOW(),
                   updated_at TIMESTAMPTZ DEFAULT NOW(), expires_at TIMESTAMPTZ,
                   PRIMARY KEY (company_id, key_type, key_id));",
            )
            .unwrap();
            c.batch_execute("GRANT SELECT ON ALL TABLES IN SCHEMA public TO janitor")
                .unwrap();
            // The janitor's role may not create schemas here: the owner makes its state's
            // schema for it, as docs/stores/postgres.md says.
            c.batch_execute("CREATE SCHEMA baileys_janitor AUTHORIZATION janitor")
                .unwrap();
            c.execute(
                "INSERT INTO whatsapp_auth (company_id, creds) VALUES ('company_1', $1::text::jsonb)",
                &[&crate::stores::CREDS],
            )
            .unwrap();
        }
        Some(pg)
    }

    /// A URL to `host` with a password in it (trust accepts any: it proves none leaks).
    fn url(&self, host: &str, db: &str, params: &str) -> String {
        format!(
            "postgres://postgres:hunter2-secret@{host}:{}/{db}?{params}",
            self.port
        )
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for TlsPg {
    fn drop(&mut self) {
        let _ = as_postgres(&format!(
            "'{}' -D '{}' -m immediate stop >/dev/null 2>&1",
            self.bin.join("pg_ctl").display(),
            self.dir.join("data").display()
        ))
        .status();
    }
}

fn status(url: &str, state: &Path) -> Output {
    // The TLS server holds no account: as for folders, finding none fails unless allowed.
    bare_cmd()
        .arg("--store")
        .arg(url)
        .arg("--state-dir")
        .arg(state)
        .arg("--allow-empty")
        .arg("status")
        .output()
        .unwrap()
}

/// One line on stderr (besides the warning about the password on the command line).
#[track_caller]
fn assert_one_error_line(o: &Output, wanted: &str) {
    let err = text(&o.stderr);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.contains("carries a password"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains(wanted), "wanted {wanted:?} in {err}");
}

#[test]
fn postgres_tls_verify_full_checks_the_host_name_and_require_needs_no_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(&tmp.path().join("pki")) else {
        return;
    };
    let Some(pg) = TlsPg::start(&pki, &tmp.path().join("pg")) else {
        return;
    };
    let state = tmp.path().join("state");
    let ca = pki.path("ca.pem");
    let mut outputs = Vec::new();

    let ok = status(
        &pg.url(
            "localhost",
            "postgres",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &state,
    );
    assert_code(&ok, 0);
    assert!(
        text(&ok.stdout)
            .contains("connection: encrypted (TLS 1.3), verified: certificate chain and host name"),
        "{}",
        text(&ok.stdout)
    );
    assert!(
        text(&ok.stdout).contains("company_1"),
        "{}",
        text(&ok.stdout)
    );
    outputs.push(ok);

    // The certificate names localhost only: 127.0.0.1 is the wrong host name.
    let wrong_host = status(
        &pg.url(
            "127.0.0.1",
            "postgres",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &state,
    );
    assert_code(&wrong_host, 1);
    assert_one_error_line(&wrong_host, "is not valid for the host name 127.0.0.1");
    outputs.push(wrong_host);

    let chain_only = status(
        &pg.url(
            "127.0.0.1",
            "postgres",
            &format!("sslmode=verify-ca&sslrootcert={ca}"),
        ),
        &state,
    );
    assert_code(&chain_only, 0);
    assert!(text(&chain_only.stdout).contains("verified: certificate chain (not the host name)"));
    outputs.push(chain_only);

    let other_ca = status(
        &pg.url(
            "localhost",
            "postgres",
            &format!(
                "sslmode=verify-full&sslrootcert={}",
                pki.path("other-ca.pem")
            ),
        ),
        &state,
    );
    assert_code(&other_ca, 1);
    assert_one_error_line(
        &other_ca,
        "certificate of localhost is not signed by a trusted CA",
    );
    outputs.push(other_ca);

    let require = status(&pg.url("127.0.0.1", "postgres", "sslmode=require"), &state);
    assert_code(&require, 0);
    assert!(
        text(&require.stdout)
            .contains("connection: encrypted (TLS 1.3), server certificate not verified"),
        "{}",
        text(&require.stdout)
    );
    outputs.push(require);

    // libpq's default (prefer) encrypts when the server offers it.
    let prefer = status(&pg.url("127.0.0.1", "postgres", ""), &state);
    assert_code(&prefer, 0);
    assert!(text(&prefer.stdout).contains("connection: encrypted"));
    outputs.push(prefer);

    // Nothing goes in clear: the server takes TLS only, and every janitor connection was TLS.
    let plain = status(&pg.url("127.0.0.1", "postgres", "sslmode=disable"), &state);
    assert_code(&plain, 1);
    assert_one_error_line(&plain, "no encryption");
    outputs.push(plain);
    let log = pg.log();
    let ours: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("connection authorized") && l.contains("baileys-janitor@"))
        .collect();
    assert!(ours.len() >= 4, "{log}");
    for l in &ours {
        assert!(
            l.contains("SSL enabled"),
            "a janitor connection without TLS: {l}"
        );
    }
    assert_no_secret(
        tmp.path().join("state").as_path(),
        &outputs.iter().collect::<Vec<_>>(),
    );
}

#[test]
fn postgres_client_certificate_is_sent_when_the_server_asks() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(&tmp.path().join("pki")) else {
        return;
    };
    let Some(pg) = TlsPg::start(&pki, &tmp.path().join("pg")) else {
        return;
    };
    let state = tmp.path().join("state");
    let ca = pki.path("ca.pem");
    let without = status(
        &pg.url(
            "localhost",
            "certdb",
            &format!("sslmode=verify-full&sslrootcert={ca}"),
        ),
        &state,
    );
    assert_code(&without, 1);
    assert_one_error_line(&without, "requires a valid client certificate");
    let with = status(
        &pg.url(
            "localhost",
            "certdb",
            &format!(
                "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
                pki.path("client.pem"),
                pki.path("client.key")
            ),
        ),
        &state,
    );
    assert_code(&with, 0);
    assert!(text(&with.stdout).contains("company_1"));
    // A key others can read is refused before connecting, as libpq does.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        pki.dir.join("client.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let open_key = status(
        &pg.url(
            "localhost",
            "certdb",
            &format!(
                "sslmode=verify-full&sslrootcert={ca}&sslcert={}&sslkey={}",
                pki.path("client.pem"),
                pki.path("client.key")
            ),
        ),
        &state,
    );
    assert_code(&open_key, 2);
    assert_one_error_line(&open_key, "chmod 600");
    assert_no_secret(&state, &[&without, &with, &open_key]);
}

/// A throwaway redis-server on a TLS port only (no plain port), asking for client certificates.
struct TlsRedis {
    dir: PathBuf,
    port: u16,
}

impl TlsRedis {
    fn start(pki: &Pki, dir: &Path) -> Option<TlsRedis> {
        if Command::new("redis-server")
            .arg("--version")
            .output()
            .is_err()
        {
            skip("redis tls tests (no redis-server)");
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let port = free_port();
        let out = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--tls-cert-file", &pki.path("server.pem")])
            .args(["--tls-key-file", &pki.path("server.key")])
            .args(["--tls-ca-cert-file", &pki.path("ca.pem")])
            .args(["--tls-auth-clients", "optional"])
            .args(["--daemonize", "yes", "--dir"])
            .arg(dir)
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .arg("--logfile")
            .arg(dir.join("log"))
            .output()
            .unwrap();
        let r = TlsRedis {
            dir: dir.to_owned(),
            port,
        };
        if !out.status.success() {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            if log.contains("TLS") && log.contains("not") {
                skip("redis tls tests (this redis-server has no TLS built in)");
                return None;
            }
            panic!("redis-server: {}{log}", text(&out.stderr));
        }
        for _ in 0..50 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(r);
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("redis-server did not listen on {port}");
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("pid")) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

#[test]
fn rediss_verifies_the_server_and_sends_a_client_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(&tmp.path().join("pki")) else {
        return;
    };
    let Some(redis) = TlsRedis::start(&pki, &tmp.path().join("redis")) else {
        return;
    };
    let state = tmp.path().join("state");
    let ca = pki.path("ca.pem");
    let port = redis.port;
    let url = |host: &str, params: &str| {
        format!("rediss://default:hunter2-secret@{host}:{port}/0?{params}")
    };
    let mut outputs = Vec::new();

    let ok = status(&url("localhost", &format!("sslrootcert={ca}")), &state);
    assert_code(&ok, 0);
    assert!(
        text(&ok.stdout)
            .contains("connection: encrypted (TLS), verified: certificate chain and host name"),
        "{}",
        text(&ok.stdout)
    );
    outputs.push(ok);

    let wrong_host = status(&url("127.0.0.1", &format!("sslrootcert={ca}")), &state);
    assert_code(&wrong_host, 1);
    assert_one_error_line(&wrong_host, "is not valid for the host name 127.0.0.1");
    outputs.push(wrong_host);

    // The system's roots do not know the test CA.
    let system_roots = status(&url("localhost", ""), &state);
    assert_code(&system_roots, 1);
    assert_one_error_line(
        &system_roots,
        "certificate of localhost is not signed by a trusted CA",
    );
    outputs.push(system_roots);

    let with_cert = status(
        &url(
            "localhost",
            &format!(
                "sslrootcert={ca}&sslcert={}&sslkey={}",
                pki.path("client.pem"),
                pki.path("client.key")
            ),
        ),
        &state,
    );
    assert_code(&with_cert, 0);
    outputs.push(with_cert);

    // The server now asks every client for a certificate: without one the handshake fails,
    // with one it works.
    run(Command::new("redis-cli")
        .args(["--tls", "--cacert", &ca, "--cert", &pki.path("client.pem")])
        .args([
            "--key",
            &pki.path("client.key"),
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
        ])
        .args(["CONFIG", "SET", "tls-auth-clients", "yes"]));
    let asked_without = status(&url("localhost", &format!("sslrootcert={ca}")), &state);
    assert_code(&asked_without, 1);
    assert_one_error_line(&asked_without, "localhost refused the TLS handshake");
    outputs.push(asked_without);
    let client_cert = format!(
        "sslrootcert={ca}&sslcert={}&sslkey={}",
        pki.path("client.pem"),
        pki.path("client.key")
    );
    let asked_with = status(&url("localhost", &client_cert), &state);
    assert_code(&asked_with, 0);
    outputs.push(asked_with);
    run(Command::new("redis-cli")
        .args(["--tls", "--cacert", &ca, "--cert", &pki.path("client.pem")])
        .args([
            "--key",
            &pki.path("client.key"),
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
        ])
        .args(["CONFIG", "SET", "tls-auth-clients", "optional"]));

    // Nothing in clear: the server has no plain port, a redis:// connection gets no answer.
    let plain = bare_cmd()
        .arg("--store")
        .arg(format!("redis://127.0.0.1:{port}/0"))
        .arg("--state-dir")
        .arg(&state)
        .arg("status")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap();
    assert_code(&plain, 1);
    outputs.push(plain);

    // Redis ACL users (redis://user:pass@): the default user off, a janitor user with a
    // password that comes from a password file or REDISCLI_AUTH.
    run(Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            &ca,
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
        ])
        .args([
            "ACL",
            "SETUSER",
            "janitor",
            "on",
            ">hunter2-secret",
            "~*",
            "&*",
            "+@all",
        ]));
    run(Command::new("redis-cli")
        .args([
            "--tls",
            "--cacert",
            &ca,
            "-h",
            "localhost",
            "-p",
            &port.to_string(),
        ])
        .args(["ACL", "SETUSER", "default", "off"]));
    let acl_url = format!("rediss://janitor@localhost:{port}/0?sslrootcert={ca}");
    let no_password = status(&acl_url, &state);
    assert_code(&no_password, 1);
    outputs.push(no_password);
    let from_env = bare_cmd()
        .env("REDISCLI_AUTH", "hunter2-secret")
        .args(["--store", &acl_url, "--state-dir"])
        .arg(&state)
        .args(["--allow-empty", "status"])
        .output()
        .unwrap();
    assert_code(&from_env, 0);
    outputs.push(from_env);
    let wrong = status(&acl_url.replace("janitor@", "janitor:not-it@"), &state);
    assert_code(&wrong, 1);
    outputs.push(wrong);
    assert_no_secret(&state, &outputs.iter().collect::<Vec<_>>());
}

/// Issue 22: a password in `--store postgres://user:pass@…` is visible to every user in
/// /proc/PID/cmdline and in the crontab. It can come from a password file readable by its owner
/// only, PGPASSWORD, ~/.pgpass (PGPASSFILE) or BAILEYS_JANITOR_STORE, and never shows anywhere.
#[test]
fn postgres_password_comes_from_outside_argv() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::new(&tmp.path().join("pki")) else {
        return;
    };
    let Some(pg) = TlsPg::start(&pki, &tmp.path().join("pg")) else {
        return;
    };
    let state = tmp.path().join("state");
    let url = format!(
        "postgres://janitor@localhost:{}/pwdb?sslmode=verify-full&sslrootcert={}",
        pg.port,
        pki.path("ca.pem")
    );
    let run = |env: &[(&str, &str)], config: Option<&Path>, store_flag: Option<&str>| {
        let mut c = bare_cmd();
        for (k, v) in env {
            c.env(k, v);
        }
        if let Some(f) = config {
            c.arg("--config").arg(f);
        }
        if let Some(s) = store_flag {
            c.arg("--store").arg(s);
        }
        c.arg("--state-dir")
            .arg(&state)
            .arg("status")
            .output()
            .unwrap()
    };
    let mut outputs = Vec::new();

    let none = run(&[], None, Some(&url));
    assert_code(&none, 1);
    assert_one_error_line(&none, "password");
    outputs.push(none);

    let pw = tmp.path().join("store-password");
    std::fs::write(&pw, "hunter2-secret\n").unwrap();
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o600)).unwrap();
    let config = tmp.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[store]\nurl = {url:?}\npassword_file = {:?}\n",
            pw.display().to_string()
        ),
    )
    .unwrap();
    let from_file = run(&[], Some(&config), None);
    assert_code(&from_file, 0);
    assert!(text(&from_file.stdout).contains("company_1"));
    assert!(!text(&from_file.stderr).contains("carries a password"));
    outputs.push(from_file);

    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o640)).unwrap();
    let readable = run(&[], Some(&config), None);
    assert_code(&readable, 2);
    assert_one_error_line(&readable, "group or others can read it");
    outputs.push(readable);

    let from_env = run(&[("PGPASSWORD", "hunter2-secret")], None, Some(&url));
    assert_code(&from_env, 0);
    outputs.push(from_env);
    // A real cleanup with a metrics file, a JSON report and debug logs: the password is in
    // none of them, nor anywhere in the state directory (checked at the end).
    let metrics = tmp.path().join("metrics/baileys-janitor.prom");
    std::fs::create_dir_all(metrics.parent().unwrap()).unwrap();
    let cleanup = bare_cmd()
        .env("PGPASSWORD", "hunter2-secret")
        .env("BAILEYS_JANITOR_METRICS_FILE", &metrics)
        .env("BAILEYS_JANITOR_LOG", "debug")
        .args(["--store", &url, "--state-dir"])
        .arg(&state)
        .args(["cleanup", "--json"])
        .output()
        .unwrap();
    assert_code(&cleanup, 0);
    assert!(metrics.exists(), "the metrics file was written");
    outputs.push(cleanup);

    let pgpass = tmp.path().join("pgpass");
    std::fs::write(
        &pgpass,
        format!(
            "# ours\nlocalhost:{}:pwdb:janitor:hunter2-secret\n",
            pg.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let from_pgpass = run(
        &[("PGPASSFILE", pgpass.to_str().unwrap())],
        None,
        Some(&url),
    );
    assert_code(&from_pgpass, 0);
    outputs.push(from_pgpass);

    let with_pw = url.replace("janitor@", "janitor:hunter2-secret@");
    let store_env = run(&[("BAILEYS_JANITOR_STORE", &with_pw)], None, None);
    assert_code(&store_env, 0);
    assert!(!text(&store_env.stderr).contains("carries a password"));
    outputs.push(store_env);

    // Still works on the command line, with one warning saying why not to.
    let on_argv = run(&[], None, Some(&with_pw));
    assert_code(&on_argv, 0);
    assert_eq!(
        text(&on_argv.stderr).matches("carries a password").count(),
        1,
        "{}",
        text(&on_argv.stderr)
    );
    outputs.push(on_argv);
    assert_no_secret(&state, &outputs.iter().collect::<Vec<_>>());
    assert_no_secret(metrics.parent().unwrap(), &[]);
}
