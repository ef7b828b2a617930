#!/usr/bin/env python3
"""Moves Baileys-written auth folders into Baileys' SQLite layout and back, byte for byte.

    sqlite.py to-db   MANIFEST FOLDERS DBDIR   one <company>.db per folder, develop's exact schema
    sqlite.py to-dir  MANIFEST DBDIR FOLDERS   the rows left, as the files Baileys reads
    sqlite.py connect MANIFEST DBDIR            each account connects: Baileys rewrites its creds
                                                (lastAccountSyncTimestamp), the account's activity

Values are the files' bytes: what Baileys' JSON.stringify(value, BufferJSON.replacer) wrote,
the same text `useSqliteAuthState` stores. Types and raw ids come from the manifest, recorded
from Baileys' own keys.set calls.
"""
import json
import os
import sqlite3
import sys
import time

SCHEMA = """
CREATE TABLE IF NOT EXISTS creds (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS signal_keys (type TEXT NOT NULL, id TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (type, id));
CREATE INDEX IF NOT EXISTS signal_keys_type_idx ON signal_keys(type);
"""


def fix_file_name(s):
    return s.replace("/", "__").replace(":", "-")


def to_db(manifest, folders, dbdir):
    os.makedirs(dbdir, exist_ok=True)
    for company, m in manifest.items():
        db = sqlite3.connect(os.path.join(dbdir, company + ".db"))
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMA)
        for file, (category, key_id) in m["files"].items():
            with open(os.path.join(folders, company, file), encoding="utf-8") as f:
                value = f.read()
            if category == "creds":
                db.execute("INSERT INTO creds (key, value) VALUES ('__creds__', ?)", (value,))
            else:
                db.execute("INSERT INTO signal_keys (type, id, value) VALUES (?, ?, ?)", (category, key_id, value))
        db.commit()
        db.close()


def to_dir(manifest, dbdir, folders):
    for company in manifest:
        out = os.path.join(folders, company)
        os.makedirs(out, exist_ok=True)
        db = sqlite3.connect(os.path.join(dbdir, company + ".db"))
        (creds,) = db.execute("SELECT value FROM creds WHERE key = '__creds__'").fetchone()
        with open(os.path.join(out, "creds.json"), "w", encoding="utf-8") as f:
            f.write(creds)
        for t, key_id, value in db.execute("SELECT type, id, value FROM signal_keys"):
            with open(os.path.join(out, fix_file_name(f"{t}-{key_id}.json")), "w", encoding="utf-8") as f:
                f.write(value)
        db.close()


def connect(manifest, dbdir, _unused=None):
    for company in manifest:
        db = sqlite3.connect(os.path.join(dbdir, company + ".db"))
        (creds,) = db.execute("SELECT value FROM creds WHERE key = '__creds__'").fetchone()
        value = json.loads(creds)
        value["lastAccountSyncTimestamp"] = int(time.time())
        db.execute("UPDATE creds SET value = ? WHERE key = '__creds__'", (json.dumps(value),))
        db.commit()
        db.close()


if __name__ == "__main__":
    mode, manifest_path, a = sys.argv[1:4]
    b = sys.argv[4] if len(sys.argv) > 4 else None
    with open(manifest_path, encoding="utf-8") as f:
        manifest = json.load(f)
    {"to-db": to_db, "to-dir": to_dir, "connect": connect}[mode](manifest, a, b)
