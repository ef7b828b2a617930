#!/usr/bin/env python3
"""Builds a realistic, deterministic Baileys sessions tree: one folder per company, with the
file names Baileys' useMultiFileAuthState writes and realistic ages (mtimes).

    scripts/make-demo-tree.py ROOT [--companies 5] [--files 400] [--seed 1]

Each company gets a paired creds.json, app-state keys, lid-mappings, device lists, tctokens,
sessions (phone and LID addresses) with identity keys, group sender keys (some our own) and
their sender-key-memory files, pre-keys with realistic counters, and a few .bak / .tmp
companions. Ages range from minutes (a live app) to months. Same seed, same tree.
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


def company(root, cid, files, rng, now):
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

    # Sessions and identity keys: phone and LID addresses, ages up to two months.
    sessions = (files - n) // 3
    for i in range(sessions):
        addr = f"{rng.randrange(10**14, 10**15)}_1.0" if rng.random() < 0.5 else f"55{rng.randrange(10**10, 10**11)}.{rng.choice([0, 0, 12])}"
        age = rng.uniform(0, 60) * DAY if rng.random() > 0.05 else rng.uniform(0, 300)
        put(f"session-{addr}.json", age)
        if rng.random() < 0.5:
            put(f"identity-key-{addr}.json", age + rng.uniform(0, DAY))
        if rng.random() < 0.03:
            put(f"session-{addr}.json.bak", age + 60)

    # Pre-keys fill the rest: consecutive ids, the newest uploaded most recently.
    pre = max(1, files - n - 2)
    first = rng.randrange(1, 5000)
    last = first + pre - 1
    for k, pid in enumerate(range(first, last + 1)):
        age = (pre - k) * rng.uniform(0.05, 0.3) * DAY
        put(f"pre-key-{pid}.json", age, json.dumps({"public": buf(rng), "private": buf(rng)}))
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
    args = ap.parse_args()
    now = time.time()
    os.makedirs(args.root, exist_ok=True)
    total = 0
    for i in range(args.companies):
        rng = random.Random(args.seed * 1_000_003 + i)
        total += company(args.root, args.first_id + i, args.files, rng, now)
    print(f"made {args.companies} companies, {total} files under {args.root}")


if __name__ == "__main__":
    main()
