#!/usr/bin/env python3
"""Builds a realistic, deterministic Baileys sessions tree: one folder per company, with the
file names Baileys' useMultiFileAuthState writes and realistic ages (mtimes).

    scripts/make-demo-tree.py ROOT [--companies 5] [--files 400] [--seed 1] [--v6]

Each company gets a paired creds.json, app-state keys, lid-mappings, device lists, tctokens,
sessions (phone and LID addresses) with identity keys, group sender keys (some our own) and
their sender-key-memory files, pre-keys with realistic counters, and a few .bak / .tmp
companions. Ages range from minutes (a live app) to months. Same seed, same tree.

Pre-keys are Baileys 7's by default: the 812 uploaded at pairing (INITIAL_PREKEY_COUNT) less the
ones contacts used (one per session), a few top-ups of 5, and in every fourth company a reconnect
loop's earlier batch of 812 (waste below the server window). `--files` is then what grows
(sessions, sender keys, ...): the pre-key pool comes on top, as in a real v7 folder (780-1,080
files). `--v6` makes Baileys 6 folders instead: pre-keys fill `--files` up, as before.
"""
import argparse
import json
import os
import random
import time

DAY = 86400.0


def write(path, data, age, now):
    with open(path, "w") as f:
        f.write(data)
    t = now - age
    os.utime(path, (t, t))


def buf(rng, n=32):
    import base64
    return {"type": "Buffer", "data": base64.b64encode(rng.randbytes(n)).decode()}


V7_BATCH = 812  # Baileys 7's INITIAL_PREKEY_COUNT


def company(root, cid, files, rng, now, v6=True, loop=False):
    d = os.path.join(root, f"company_{cid}")
    os.makedirs(d, exist_ok=True)
    phone = f"55{rng.randrange(10**10, 10**11)}"
    lid = f"{rng.randrange(10**14, 10**15)}"
    n = 0

    def put(name, age, data=None):
        nonlocal n
        write(os.path.join(d, name), data if data is not None else json.dumps({"k": buf(rng)}), age, now)
        n += 1

    # Protected: ~12% of the folder.
    for i in range(6):
        put(f"app-state-sync-key-AAAA{rng.randrange(16**4):04X}.json", rng.uniform(1, 200) * DAY)
    for name in ["critical_block", "critical_unblock_low", "regular", "regular_high", "regular_low"]:
        put(f"app-state-sync-version-{name}.json", rng.uniform(0, 3) * DAY)
    lids = max(4, files // 20)
    for i in range(lids):
        pn = f"55{rng.randrange(10**10, 10**11)}"
        put(f"lid-mapping-{pn}.json", rng.uniform(0, 120) * DAY, json.dumps(f"{rng.randrange(10**14, 10**15)}"))
        if i % 2 == 0:
            put(f"lid-mapping-{rng.randrange(10**14, 10**15)}_reverse.json", rng.uniform(0, 120) * DAY, json.dumps(pn))
    for i in range(max(2, files // 40)):
        put(f"device-list-55{rng.randrange(10**10, 10**11)}.json", rng.uniform(0, 60) * DAY, json.dumps(["0", "12"]))
    for i in range(max(1, files // 80)):
        put(f"tctoken-{rng.randrange(10**14, 10**15)}@lid.json", rng.uniform(0, 20) * DAY)

    # Groups: sender keys (ours and others') and their memory files.
    groups = [f"120363{rng.randrange(10**12, 10**13)}@g.us" for _ in range(max(2, files // 50))]
    for g in groups:
        put(f"sender-key-memory-{g}.json", rng.uniform(0, 8) * DAY, json.dumps({f"{phone}:0@s.whatsapp.net": True}))
        put(f"sender-key-{g}--{lid}_1--0.json", rng.uniform(0, 8) * DAY)  # our own
    budget = files - n
    sender_keys = budget // 6
    for i in range(sender_keys):
        g = rng.choice(groups)
        user = f"{rng.randrange(10**14, 10**15)}_1" if rng.random() < 0.6 else f"55{rng.randrange(10**10, 10**11)}"
        put(f"sender-key-{g}--{user}--{rng.choice([0, 0, 0, 12, 33])}.json", rng.uniform(0, 10) * DAY)

    # Sessions and identity keys: phone and LID addresses, ages up to two months. (v6: pre-keys
    # fill what is left; v7: they come on top, so sessions take more of the budget.)
    sessions = (files - n) // (3 if v6 else 2)
    for i in range(sessions):
        addr = f"{rng.randrange(10**14, 10**15)}_1.0" if rng.random() < 0.5 else f"55{rng.randrange(10**10, 10**11)}.{rng.choice([0, 0, 12])}"
        age = rng.uniform(0, 60) * DAY if rng.random() > 0.05 else rng.uniform(0, 300)
        put(f"session-{addr}.json", age)
        if rng.random() < 0.5:
            put(f"identity-key-{addr}.json", age + rng.uniform(0, DAY))
        if rng.random() < 0.03:
            put(f"session-{addr}.json.bak", age + 60)

    def pre_key(pid, age):
        put(f"pre-key-{pid}.json", age, json.dumps({"public": buf(rng), "private": buf(rng)}))

    if v6:
        # Pre-keys fill the rest: consecutive ids, the newest uploaded most recently.
        pre = max(1, files - n - 2)
        first = rng.randrange(1, 5000)
        last = first + pre - 1
        for k, pid in enumerate(range(first, last + 1)):
            pre_key(pid, (pre - k) * rng.uniform(0.05, 0.3) * DAY)
    else:
        # Baileys 7: 812 uploaded at pairing; each contact that wrote used (and libsignal
        # deleted) one; a few top-ups of 5 since. A reconnect loop uploaded a whole batch
        # before this one: the server handed it out to contacts that never wrote, so its rest
        # is still on disk below the server window (waste the daily cleanup removes).
        paired = rng.uniform(20, 90) * DAY
        first = 1
        if loop:
            used = set(rng.sample(range(1, V7_BATCH + 1), 15))
            for pid in range(1, V7_BATCH + 1):
                if pid not in used:
                    pre_key(pid, paired + 2 * DAY)
            first = V7_BATCH + 1
        batch = range(first, first + V7_BATCH)
        used = set(rng.sample(batch, min(sessions, V7_BATCH - 50)))
        for pid in batch:
            if pid not in used:
                pre_key(pid, paired)
        last = first + V7_BATCH - 1
        for _ in range(rng.randrange(0, 5)):
            top_up = rng.uniform(0.5, paired / DAY) * DAY
            for pid in range(last + 1, last + 6):
                pre_key(pid, top_up)
            last += 5
    put(f"session-{rng.randrange(10**14, 10**15)}_1.0.json.tmp", 3600)

    creds = {
        "noiseKey": {"private": buf(rng), "public": buf(rng)},
        "signedIdentityKey": {"private": buf(rng), "public": buf(rng)},
        "registrationId": rng.randrange(1, 16380),
        "advSecretKey": buf(rng),
        "me": {"id": f"{phone}:12@s.whatsapp.net", "lid": f"{lid}:12@lid", "name": f"Shop {cid}"},
        "account": {"details": buf(rng, 16), "accountSignatureKey": buf(rng)},
        "nextPreKeyId": last + 1,
        "firstUnuploadedPreKeyId": last + 1,
        "registered": False,
    }
    put("creds.json", rng.uniform(0, 2) * 3600, json.dumps(creds))
    return n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--companies", type=int, default=5)
    ap.add_argument("--files", type=int, default=400, help="files per company (about)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--first-id", type=int, default=962300)
    ap.add_argument("--v6", action="store_true", help="Baileys 6 folders: a pool of 30, pre-keys fill --files")
    args = ap.parse_args()
    now = time.time()
    os.makedirs(args.root, exist_ok=True)
    total = 0
    for i in range(args.companies):
        rng = random.Random(args.seed * 1_000_003 + i)
        total += company(args.root, args.first_id + i, args.files, rng, now, args.v6, i % 4 == 3)
    kind = "Baileys 6" if args.v6 else "Baileys 7"
    print(f"made {args.companies} {kind} companies, {total} files under {args.root}")


if __name__ == "__main__":
    main()
