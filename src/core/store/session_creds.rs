//! Evolution API's files mode keeps keys in `instances/<id>/` but creds only in its database
//! (`"Session".creds`, `sessionId` = the instance id, text = `JSON.stringify` of the
//! `BufferJSON`-encoded creds: JSON encoded twice). Without them the pre-key rule has no
//! counters and touches no pre-key; with `--creds postgres://…` the folder clean reads them from
//! here (source: `src/utils/use-multi-file-auth-state-prisma.ts`, `saveKey` / `getAuthKey`).

use std::sync::Mutex;

use super::spec::redact_postgres;
use super::{Result, StoreError};
use crate::core::clean::CredsSource;

pub struct SessionTable {
    client: Mutex<postgres::Client>,
    target: String,
}

impl SessionTable {
    /// Connects (TLS as the string says) and checks the `"Session"` table is there.
    pub fn connect(url: &str, app_name: &str) -> Result<SessionTable> {
        let target = redact_postgres(url);
        let (mut client, transport) =
            super::tls::connect_postgres(url, &target, app_name, std::time::Duration::from_secs(5))
                .map_err(|e| match e {
                    StoreError::Schema(m) => StoreError::Schema(format!("--creds: {m}")),
                    other => other,
                })?;
        client
            .query("SELECT \"sessionId\", creds FROM \"Session\" LIMIT 0", &[])
            .map_err(|e| {
                StoreError::Schema(format!(
                    "{target}: cannot read Evolution API's \"Session\" table ({}): is --creds the Evolution database?",
                    e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned())
                ))
            })?;
        tracing::info!(creds = %target, connection = %transport, "connected");
        Ok(SessionTable {
            client: Mutex::new(client),
            target,
        })
    }
}

/// The creds JSON from the stored text: Evolution's is a JSON string holding the JSON.
pub fn decode(stored: &str) -> Vec<u8> {
    match serde_json::from_str::<String>(stored) {
        Ok(inner) => inner.into_bytes(),
        Err(_) => stored.as_bytes().to_vec(),
    }
}

impl CredsSource for SessionTable {
    fn creds(&self, company: &str) -> std::result::Result<Option<Vec<u8>>, String> {
        let mut client = self
            .client
            .lock()
            .map_err(|_| format!("{}: connection unusable", self.target))?;
        let rows = client
            .query(
                "SELECT creds FROM \"Session\" WHERE \"sessionId\" = $1",
                &[&company],
            )
            .map_err(|e| {
                format!(
                    "{}: cannot read the creds: {}",
                    self.target,
                    e.as_db_error()
                        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
                )
            })?;
        Ok(rows
            .first()
            .and_then(|r| r.get::<_, Option<String>>(0))
            .map(|s| decode(&s)))
    }

    fn describe(&self) -> String {
        format!("\"Session\" in {}", self.target)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn evolution_creds_are_decoded_once_more() {
        let creds = r#"{"me":{"id":"1:2@s.whatsapp.net"},"nextPreKeyId":5}"#;
        let stored = serde_json::to_string(creds).unwrap();
        assert_eq!(super::decode(&stored), creds.as_bytes());
        assert_eq!(
            super::decode(creds),
            creds.as_bytes(),
            "plain JSON read as is"
        );
    }
}
