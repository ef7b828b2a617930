//! Who holds a store lock that lives on a server (Redis), and whether that holder is provably
//! gone: the lock value records the host, the pid and the process's start time, so a lock left
//! by a process that died (SIGKILL, a crash, a reboot) on this same host is taken over at once
//! instead of blocking every run until its expiry. A holder on another host is never judged:
//! only the expiry frees its lock.

/// The facts a lock value carries (`<app>@<host> pid <pid> start <ticks> <random>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22); `0`
    /// where it cannot be read.
    pub start: u64,
}

impl Holder {
    /// This process.
    pub fn me(host: &str) -> Holder {
        let pid = std::process::id();
        Holder {
            host: host.to_owned(),
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// The lock value: `<app> pid <pid> start <ticks> <random>`; `app` is
    /// `baileys-janitor@<host>`.
    pub fn token(&self, app: &str, random: u64) -> String {
        format!("{app} pid {} start {} {random:016x}", self.pid, self.start)
    }

    /// Reads a lock value written by [`Holder::token`] (older values without `start` too).
    pub fn parse(token: &str) -> Option<Holder> {
        let mut words = token.split(' ');
        let app = words.next()?;
        let host = app.split_once('@')?.1.to_owned();
        if words.next()? != "pid" {
            return None;
        }
        let pid = words.next()?.parse().ok()?;
        let start = match words.next() {
            Some("start") => words.next()?.parse().ok()?,
            _ => 0,
        };
        Some(Holder { host, pid, start })
    }

    /// True only when the holder is on `host` and its process is gone: no such pid, or a pid
    /// reused by a process that started at another time. Anything uncertain is "not gone".
    pub fn is_gone(&self, host: &str) -> bool {
        if self.host != host || self.pid == 0 {
            return false;
        }
        match start_time(self.pid) {
            None => !pid_exists(self.pid),
            Some(now) => self.start != 0 && now != self.start,
        }
    }
}

fn pid_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Field 22 of `/proc/<pid>/stat` (after the command name, which may hold spaces and parens).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start(&stat)
}

fn parse_start(stat: &str) -> Option<u64> {
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3 (state); field 22 is the 20th of these.
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_old_tokens_still_parse() {
        let h = Holder {
            host: "bot-1".into(),
            pid: 4242,
            start: 987654,
        };
        let t = h.token("baileys-janitor@bot-1", 7);
        assert_eq!(
            t,
            "baileys-janitor@bot-1 pid 4242 start 987654 0000000000000007"
        );
        assert_eq!(Holder::parse(&t), Some(h));
        assert_eq!(
            Holder::parse("baileys-janitor@bot-1 pid 5745 00ff"),
            Some(Holder {
                host: "bot-1".into(),
                pid: 5745,
                start: 0
            })
        );
        assert_eq!(Holder::parse("someone else"), None);
    }

    #[test]
    fn start_time_is_read_past_a_command_name_with_spaces() {
        let stat = "77 (a b) c) S 1 77 77 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 0 0";
        assert_eq!(parse_start(stat), Some(123456));
        assert!(start_time(std::process::id()).is_some());
    }

    #[test]
    fn only_a_holder_on_this_host_whose_process_is_gone_is_gone() {
        let me = Holder::me("here");
        assert!(!me.is_gone("here"), "this process is alive");
        assert!(!me.is_gone("elsewhere"), "another host is never judged");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = Holder {
            host: "here".into(),
            pid,
            start: 1,
        };
        assert!(dead.is_gone("here"));
        assert!(!dead.is_gone("there"));
        let reused = Holder {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(reused.is_gone("here"), "same pid, another start time");
    }
}
