//! What the package ships, checked against the binary: completions and man pages cover the whole
//! CLI, `--version` names the commit, the example config is the defaults, and the dashboard and
//! alert rules only query metrics the binary really writes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use baileys_janitor::cli::Cli;
use clap::CommandFactory;

use crate::testenv::*;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn completions(shell: &str) -> String {
    let out = bare_cmd().args(["completions", shell]).output().unwrap();
    assert_code(&out, 0);
    text(&out.stdout)
}

/// `--long` and `-s` of the visible arguments a command defines itself (globals excluded).
fn own_flags(cmd: &clap::Command, globals: bool) -> Vec<(Option<String>, Option<char>)> {
    cmd.get_arguments()
        .filter(|a| !a.is_hide_set() && a.is_global_set() == globals && !a.is_positional())
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
        .map(|a| (a.get_long().map(str::to_owned), a.get_short()))
        .collect()
}

fn visible_subcommands(cmd: &clap::Command) -> Vec<clap::Command> {
    cmd.get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .cloned()
        .collect()
}

/// zsh: the `_arguments` block of one subcommand, from `(name)` to its `;;`.
fn zsh_section<'a>(script: &'a str, name: &str) -> &'a str {
    let start = script
        .find(&format!("({name})\n"))
        .unwrap_or_else(|| panic!("zsh: no section for {name}"));
    let rest = &script[start..];
    &rest[..rest.find(";;").unwrap()]
}

#[test]
fn every_subcommand_and_flag_is_in_the_completions_and_man_pages() {
    let mut cli = Cli::command();
    cli.build();
    let (bash, zsh, fish) = (completions("bash"), completions("zsh"), completions("fish"));
    let man_dir = tempfile::tempdir().unwrap();
    assert_code(
        &bare_cmd()
            .args(["man", "--dir"])
            .arg(man_dir.path())
            .output()
            .unwrap(),
        0,
    );
    // roff escapes '-' as '\-'.
    let man = |name: &str| {
        let p = man_dir.path().join(format!("{name}.1"));
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .replace("\\-", "-")
    };
    let main_page = man("baileys-janitor");
    let subs = visible_subcommands(&cli);
    assert!(subs.len() >= 7, "cleanup … completions: {}", subs.len());
    // fish: one `complete` entry may span lines (possible values with descriptions).
    let fish_entries: Vec<&str> = fish.split("\ncomplete ").collect();
    let fish_top: String = fish_entries
        .iter()
        .copied()
        .filter(|l| l.contains("__fish_baileys_janitor_needs_command"))
        .collect::<Vec<_>>()
        .join("\n");
    for (long, short) in own_flags(&cli, true) {
        let long = long.unwrap();
        assert!(bash.contains(&format!(" --{long}")), "bash: --{long}");
        assert!(zsh.contains(&format!("'--{long}")), "zsh: --{long}");
        assert!(fish_top.contains(&format!("-l {long}")), "fish: --{long}");
        assert!(main_page.contains(&format!("--{long}")), "man: --{long}");
        assert!(short.is_none(), "global short flags are not expected");
    }
    for arg in cli
        .get_arguments()
        .filter(|a| a.is_global_set() && !a.is_hide_set())
    {
        for v in arg.get_possible_values() {
            assert!(zsh.contains(v.get_name()), "zsh: value {}", v.get_name());
            assert!(
                fish_top.contains(v.get_name()),
                "fish: value {}",
                v.get_name()
            );
        }
    }
    for sub in &subs {
        let name = sub.get_name();
        assert!(main_page.contains(name), "man baileys-janitor: {name}");
        assert!(
            fish_top.contains(&format!("-a \"{name}\"")),
            "fish: subcommand {name}"
        );
        let page = man(&format!("baileys-janitor-{name}"));
        let zsh_sub = zsh_section(&zsh, name);
        let fish_sub: Vec<&str> = fish_entries
            .iter()
            .copied()
            .filter(|l| l.contains(&format!("__fish_baileys_janitor_using_subcommand {name}\"")))
            .collect();
        let fish_sub = fish_sub.join("\n");
        // bash: the `opts=` line of the subcommand lists its flags and the global ones.
        let flags = own_flags(sub, false);
        let bash_opts = bash
            .lines()
            .filter(|l| l.trim_start().starts_with("opts=\""))
            .find(|l| {
                flags.iter().all(|(long, short)| {
                    long.as_ref().is_none_or(|x| l.contains(&format!(" --{x}")))
                        && short.is_none_or(|s| l.contains(&format!("-{s} ")))
                }) && l.contains("--config")
            });
        assert!(
            bash_opts.is_some(),
            "bash: no opts line with every flag of {name}"
        );
        for (long, short) in &flags {
            if let Some(long) = long {
                assert!(
                    zsh_sub.contains(&format!("--{long}")),
                    "zsh {name}: --{long}"
                );
                assert!(
                    fish_sub.contains(&format!("-l {long}")),
                    "fish {name}: --{long}"
                );
                assert!(page.contains(&format!("--{long}")), "man {name}: --{long}");
            }
            if let Some(s) = short {
                assert!(zsh_sub.contains(&format!("'-{s}")), "zsh {name}: -{s}");
                assert!(fish_sub.contains(&format!("-s {s}")), "fish {name}: -{s}");
                assert!(page.contains(&format!("-{s}")), "man {name}: -{s}");
            }
        }
        // Possible values (shells, log formats) are completed too.
        for arg in sub
            .get_arguments()
            .filter(|a| !a.is_hide_set() && !a.is_global_set())
        {
            for v in arg.get_possible_values() {
                if v.is_hide_set() || arg.get_id() == "help" {
                    continue;
                }
                assert!(
                    zsh_sub.contains(v.get_name()),
                    "zsh {name}: value {}",
                    v.get_name()
                );
                if arg.is_positional() {
                    // clap_complete's fish script completes no positional values (a known gap).
                    let all: Vec<String> = arg
                        .get_possible_values()
                        .iter()
                        .map(|v| format!(" {}", v.get_name()))
                        .collect();
                    assert!(
                        bash.lines().any(|l| l.trim_start().starts_with("opts=\"")
                            && all.iter().all(|v| l.contains(v.as_str()))),
                        "bash {name}: values {all:?}"
                    );
                } else {
                    assert!(
                        fish_sub.contains(v.get_name()),
                        "fish {name}: value {}",
                        v.get_name()
                    );
                }
            }
        }
    }
    // Exactly one page per visible subcommand, plus the main page: nothing hidden leaks out.
    let pages: BTreeSet<String> = std::fs::read_dir(man_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut want: BTreeSet<String> = subs
        .iter()
        .map(|s| format!("baileys-janitor-{}.1", s.get_name()))
        .collect();
    want.insert("baileys-janitor.1".into());
    assert_eq!(pages, want);
}

#[test]
fn completions_refuse_an_unknown_shell() {
    let out = bare_cmd().args(["completions", "tcsh"]).output().unwrap();
    assert_code(&out, 2);
    assert!(text(&out.stderr).contains("tcsh"), "{}", text(&out.stderr));
}

#[test]
fn version_names_the_version_and_the_commit() {
    let out = bare_cmd().arg("--version").output().unwrap();
    assert_code(&out, 0);
    let line = text(&out.stdout);
    let want_prefix = format!("baileys-janitor {} (commit ", env!("CARGO_PKG_VERSION"));
    assert!(line.starts_with(&want_prefix), "{line}");
    let commit = line[want_prefix.len()..].trim_end().trim_end_matches(')');
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned());
    match head {
        Some(h) => assert_eq!(commit, h, "{line}"),
        None => assert_eq!(commit, "unknown", "{line}"),
    }
}

/// `baileys-janitor --config FILE config --json`: key → (value, source).
fn effective(config: &Path) -> std::collections::BTreeMap<String, (String, String)> {
    let out = bare_cmd()
        .arg("--config")
        .arg(config)
        .args(["config", "--json"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["settings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["key"] != "config")
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_owned(),
                (
                    s["value"].as_str().unwrap().to_owned(),
                    s["origin"]["source"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

/// Keys that are not config-file keys (flag or environment only).
const NOT_IN_FILE: &[&str] = &["dry_run", "monitor.health_url", "notify.telegram_api"];

#[test]
fn example_config_parses_and_equals_the_defaults() {
    // An empty file gives the defaults (and keeps /etc/baileys-janitor/config.toml out of it).
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let defaults = effective(&empty);
    let example = effective(&repo("deploy/config.toml"));
    assert_eq!(
        defaults.keys().collect::<Vec<_>>(),
        example.keys().collect::<Vec<_>>()
    );
    for (key, (value, _)) in &defaults {
        assert_eq!(
            &example[key].0, value,
            "deploy/config.toml sets {key} to a non-default"
        );
    }
    // It is not an empty file that trivially equals the defaults: it sets the values itself.
    let from_file = example.values().filter(|(_, src)| src == "file").count();
    assert!(
        from_file >= 35,
        "only {from_file} values come from the file"
    );
    // Every key the tool has is documented in it, set or commented out.
    let text = std::fs::read_to_string(repo("deploy/config.toml")).unwrap();
    for key in defaults
        .keys()
        .filter(|k| !NOT_IN_FILE.contains(&k.as_str()))
    {
        let (table, name) = key.split_once('.').unwrap_or(("", key));
        let in_table = match text.find(&format!("[{table}]")) {
            Some(i) if !table.is_empty() => &text[i..],
            _ => &text[..text.find("\n[").unwrap_or(text.len())],
        };
        assert!(
            in_table
                .lines()
                .take_while(|l| !l.starts_with('[') || l == &format!("[{table}]"))
                .any(|l| l.starts_with(&format!("{name} = "))
                    || l.starts_with(&format!("# {name} = "))),
            "deploy/config.toml does not mention {key}"
        );
    }
}

#[test]
fn example_config_commented_keys_are_real_keys() {
    // Uncomment `# key = value` lines: they must parse (an unknown key is an error) and then
    // come from the file.
    let text = std::fs::read_to_string(repo("deploy/config.toml")).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if rest.split_once(" = ").is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                }) =>
            {
                rest.to_owned()
            }
            _ => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert_ne!(uncommented, text);
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("config.toml");
    std::fs::write(&p, uncommented).unwrap();
    let c = effective(&p);
    for key in [
        "state_dir",
        "metrics_file",
        "notify.webhook",
        "notify.telegram_bot_token",
        "notify.telegram_chat_id",
        "notify.ping_url",
    ] {
        assert_eq!(c[key].1, "file", "{key}: {:?}", c[key]);
    }
    // Secrets are never printed.
    assert!(!c["notify.telegram_bot_token"].0.contains("ABC-DEF"));
}

/// Every `baileys_janitor_*` name in a text (PromQL, Prometheus exposition).
fn metric_names(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = s;
    while let Some(i) = rest.find("baileys_janitor_") {
        let before = rest[..i].chars().next_back();
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.insert(tail[..end].to_owned());
        }
        rest = &tail[end..];
    }
    out
}

/// Every PromQL query in a Grafana dashboard: panel targets and template variables.
fn dashboard_queries(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr" | "query" | "definition", serde_json::Value::String(s)) => {
                        out.push(s.clone())
                    }
                    _ => dashboard_queries(x, out),
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| dashboard_queries(x, out)),
        _ => {}
    }
}

#[test]
fn dashboard_and_alerts_query_only_metrics_the_binary_writes() {
    // Real metrics files: the monitor's, and the last-run files of cleanup and trigger.
    let t = Tree::new();
    t.creds("company_1", 100, 100)
        .file("company_1/session-5511.0.json", days(20))
        .file("company_1/sender-key-g1--5511--0.json", days(5))
        .file("company_1/pre-key-1.json", days(1));
    t.protected_company("company_2", 160, days(30));
    let dir = tempfile::tempdir().unwrap();
    let m = |n: &str| dir.path().join(n);
    for (args, file) in [
        (vec!["cleanup", "--metrics-file"], "cleanup.prom"),
        (vec!["trigger", "--metrics-file"], "trigger.prom"),
        (vec!["monitor", "--once", "--metrics-file"], "monitor.prom"),
    ] {
        let out = t.cmd().args(&args).arg(m(file)).output().unwrap();
        assert!(code(&out) <= 1, "{args:?}: {}", text(&out.stderr));
    }
    let mut written = BTreeSet::new();
    for f in ["cleanup.prom", "trigger.prom", "monitor.prom"] {
        let body = std::fs::read_to_string(m(f)).unwrap();
        let lines = body.lines().map(|l| Ok(l.to_owned()));
        let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
        assert!(!scrape.samples.is_empty(), "{f} is empty");
        written.extend(scrape.samples.into_iter().map(|s| s.metric));
    }
    assert!(
        written.contains("baileys_janitor_company_files_by_type"),
        "{written:?}"
    );

    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo("deploy/grafana/baileys-janitor.json")).unwrap(),
    )
    .unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dash, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let mut used = BTreeSet::new();
    for q in &queries {
        let names = metric_names(q);
        assert!(
            !names.is_empty(),
            "query names no baileys-janitor metric: {q}"
        );
        for n in &names {
            assert!(
                written.contains(n),
                "dashboard query names {n}, which nothing writes: {q}"
            );
        }
        used.extend(names);
    }
    // The four things the dashboard is for: files per company, by type, levels, last runs.
    for want in [
        "baileys_janitor_company_files",
        "baileys_janitor_company_counted_files",
        "baileys_janitor_company_reserved_pre_keys",
        "baileys_janitor_company_files_by_type",
        "baileys_janitor_company_level",
        "baileys_janitor_last_success_timestamp_seconds",
        "baileys_janitor_run_last_timestamp_seconds",
    ] {
        assert!(used.contains(want), "dashboard lacks {want}");
    }

    let alerts = std::fs::read_to_string(repo("deploy/prometheus/alerts.yml")).unwrap();
    let exprs: Vec<&str> = alerts
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
        .collect();
    assert_eq!(exprs.len(), 5, "{exprs:?}");
    let names = metric_names(&alerts);
    assert!(names.len() >= 5, "{names:?}");
    for n in &names {
        assert!(
            written.contains(n),
            "alerts.yml names {n}, which nothing writes"
        );
    }
}

#[test]
fn completions_and_man_pages_need_no_configuration() {
    // A broken or missing config must not keep the package build (or a shell) from them.
    let tmp = tempfile::tempdir().unwrap();
    let out = bare_cmd()
        .env("BAILEYS_JANITOR_CONFIG", tmp.path().join("missing.toml"))
        .args(["completions", "zsh"])
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(text(&out.stdout).contains("#compdef baileys-janitor"));
    let out = bare_cmd()
        .args(["--log-level", "loud", "man", "--dir"])
        .arg(tmp.path().join("man"))
        .output()
        .unwrap();
    assert_code(&out, 0);
    assert!(tmp.path().join("man/baileys-janitor.1").exists());
}
