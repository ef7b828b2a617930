// Baileys 7 accounts against every cleanup layer, for baileys-janitor's compatibility test
// (issue 20: the emergency layers removed keys the server still handed out).
//   node layers.mjs make ROOT OUT        four v7 accounts made with the real library, and 40 new
//                                         contacts' first messages per account
//   node layers.mjs receive ROOT OUT     decrypt every one of them in ROOT (after the layers ran)
//
// make: each account pairs (useMultiFileAuthState), uploads Baileys 7's INITIAL_PREKEY_COUNT
// (812) with getNextPreKeysNode into a stand-in server pool, and then lives a little:
//   - fresh:     nothing more (a freshly paired account);
//   - chats:     12 contacts write first messages (libsignal uses their keys and makes sessions
//                and identity keys); their sessions are 10 days old;
//   - reconnect: the server hands the whole pool to contacts that never write, runs dry, and the
//                next connect uploads 812 more (a reconnect loop's waste), then 100 more are
//                handed out;
//   - top-ups:   8 contacts write, then 4 failed digest checks upload 5 each (top-ups), sessions
//                10 days old.
// Then 40 new contacts per account fetch our bundle (the server's <user> node from our last
// upload node with one <key> from the pool, lowest id first, as the server would; parsed by
// Baileys' parseAndInjectE2ESessions) and encrypt a first message (PreKeyWhisperMessage) with
// Baileys' signal repository. Pre-key files are aged two days so the live-file guard does not
// hide what the rules decide; creds.json stays fresh (the account is online).
// receive: Baileys' repository on each folder decrypts every message; prints one line per
// account and exits 1 unless every message decrypts.
import { mkdir, readdir, readFile, utimes, writeFile } from 'fs/promises'
import { join } from 'path'
import {
	addTransactionCapability,
	getBinaryNodeChild,
	getBinaryNodeChildren,
	getNextPreKeysNode,
	INITIAL_PREKEY_COUNT,
	parseAndInjectE2ESessions,
	signedKeyPair,
	useMultiFileAuthState
} from 'baileys'
import { makeLibSignalRepository } from 'baileys/lib/Signal/libsignal.js'

const logger = {
	level: 'silent',
	child() { return logger },
	trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}
}
const NEW_CONTACTS = 40
const DAY = 86400

async function open(folder) {
	const { state, saveCreds } = await useMultiFileAuthState(folder)
	const keys = addTransactionCapability(state.keys, logger, { maxCommitRetries: 1, delayBetweenTriesMs: 1 })
	const auth = { creds: state.creds, keys }
	return { state, auth, saveCreds, repo: makeLibSignalRepository(auth, logger) }
}

// One account and the server's view of it: the pool of uploaded <key> nodes not handed out yet.
class Account {
	constructor(root, n) {
		this.name = `company_97000${n}`
		this.folder = join(root, this.name)
		this.peers = join(root, '..', 'peers', this.name)
		this.me = { id: `55119700000${n}:7@s.whatsapp.net`, lid: `97000000000000${n}:7@lid`, name: `v7 shop ${n}` }
		this.pool = []
		this.contacts = 0
	}

	async pair() {
		await mkdir(this.folder, { recursive: true })
		this.us = await open(this.folder)
		Object.assign(this.us.state.creds, {
			me: this.me,
			account: { details: Buffer.from('x'), accountSignatureKey: Buffer.alloc(32), accountSignature: Buffer.alloc(64), deviceSignature: Buffer.alloc(64) },
			signedPreKey: signedKeyPair(this.us.state.creds.signedIdentityKey, 1)
		})
		await this.us.saveCreds()
	}

	// What uploadPreKeysToServerIfRequired sends: `count` keys from firstUnuploadedPreKeyId on.
	async upload(count) {
		const { update, node } = await getNextPreKeysNode(this.us.auth, count)
		Object.assign(this.us.state.creds, update)
		await this.us.saveCreds()
		this.uploadNode = node
		this.pool.push(...getBinaryNodeChildren(getBinaryNodeChild(node, 'list'), 'key'))
	}

	// The server answers a contact's encrypt/get with one <user>: our registration, identity,
	// signed pre-key and the lowest pre-key it still holds.
	handOut() {
		const key = this.pool.shift()
		if (!key) throw new Error(`${this.name}: the server's pool is empty`)
		const child = tag => this.uploadNode.content.find(c => c.tag === tag)
		const user = {
			tag: 'user',
			attrs: { jid: this.me.id },
			content: [child('registration'), child('type'), child('identity'), child('skey'), key]
		}
		const id = Buffer.from(key.content.find(c => c.tag === 'id').content).readUIntBE(0, 3)
		return { id, reply: { tag: 'iq', attrs: {}, content: [{ tag: 'list', attrs: {}, content: [user] }] } }
	}

	// A new contact fetches our bundle and writes its first message.
	async firstMessage(text) {
		const phone = `5521${String(970000000 + this.contacts++).padStart(9, '0')}`
		const peer = await open(join(this.peers, phone))
		const { id, reply } = this.handOut()
		await parseAndInjectE2ESessions(reply, peer.repo)
		const msg = await peer.repo.encryptMessage({ jid: this.me.id, data: Buffer.from(text) })
		if (msg.type !== 'pkmsg') throw new Error(`expected a pkmsg, got ${msg.type}`)
		return { preKeyId: id, from: `${phone}@s.whatsapp.net`, text, ciphertext: msg.ciphertext.toString('base64') }
	}

	// A contact that writes now: libsignal uses its pre-key (removePreKey) and stores a session.
	async chat() {
		const m = await this.firstMessage(`hello from contact ${this.contacts}`)
		if ((await decrypt(this.folder, m)) !== m.text) throw new Error(`${this.name}: a chat did not decrypt`)
	}
}

async function decrypt(folder, m) {
	const us = await open(folder)
	const plain = await us.repo.decryptMessage({ jid: m.from, type: 'pkmsg', ciphertext: Buffer.from(m.ciphertext, 'base64') })
	return Buffer.from(plain).toString()
}

async function age(folder, prefix, days) {
	const t = Date.now() / 1000 - days * DAY
	for (const f of await readdir(folder)) {
		if (f.startsWith(prefix)) await utimes(join(folder, f), t, t)
	}
}

const [mode, root, out] = process.argv.slice(2)
if (mode === 'make') {
	const accounts = [1, 2, 3, 4].map(n => new Account(root, n))
	const [fresh, chats, reconnect, topups] = accounts
	for (const a of accounts) {
		await a.pair()
		await a.upload(INITIAL_PREKEY_COUNT)
	}
	for (let i = 0; i < 12; i++) await chats.chat()
	while (reconnect.pool.length) reconnect.handOut()
	await reconnect.upload(INITIAL_PREKEY_COUNT)
	for (let i = 0; i < 100; i++) reconnect.handOut()
	for (let i = 0; i < 8; i++) await topups.chat()
	for (let i = 0; i < 4; i++) await topups.upload(5)
	const messages = {}
	for (const a of accounts) {
		messages[a.name] = []
		for (let i = 0; i < NEW_CONTACTS; i++) messages[a.name].push(await a.firstMessage(`first contact ${i} of ${a.name}`))
		await age(a.folder, 'pre-key-', 2)
		await age(a.folder, 'session-', 10)
		await age(a.folder, 'identity-key-', 10)
		const files = await readdir(a.folder)
		const c = a.us.state.creds
		console.log(`made ${a.name}: ${files.length} files, ${files.filter(f => f.startsWith('pre-key-')).length} pre-keys, nextPreKeyId ${c.nextPreKeyId}, server pool ${a.pool.length + NEW_CONTACTS} (new contacts got ids ${messages[a.name][0].preKeyId}..${messages[a.name].at(-1).preKeyId})`)
	}
	await writeFile(out, JSON.stringify(messages))
} else if (mode === 'receive') {
	const messages = JSON.parse(await readFile(out, 'utf-8'))
	let failed = 0
	for (const [name, list] of Object.entries(messages)) {
		const folder = join(root, name)
		let ok = 0
		const errors = new Map()
		for (const m of list) {
			try {
				if ((await decrypt(folder, m)) === m.text) ok++
				else errors.set('wrong plaintext', (errors.get('wrong plaintext') ?? 0) + 1)
			} catch (e) {
				const why = String(e?.message ?? e)
				errors.set(why, (errors.get(why) ?? 0) + 1)
			}
		}
		failed += list.length - ok
		const why = [...errors].map(([k, n]) => `${n}x ${k}`).join('; ')
		console.log(`${name}: ${ok}/${list.length} first messages decrypted${why ? ` (failed: ${why})` : ''}`)
	}
	if (failed) {
		console.log(`FAIL: ${failed} first messages from new contacts did not decrypt`)
		process.exit(1)
	}
} else {
	console.error('usage: node layers.mjs make ROOT OUT | receive ROOT OUT')
	process.exit(2)
}
