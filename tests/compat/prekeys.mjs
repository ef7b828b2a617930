// Pre-keys against Baileys and libsignal's own code, for baileys-janitor's compatibility test.
//   node prekeys.mjs make ROOT OUT     a company after two 812-key uploads, and a contact's first
//                                       message built against the bundle the server hands out
//   node prekeys.mjs receive FOLDER OUT ok|fail
//                                       decrypt that message in FOLDER (after a cleanup)
//
// make: pairs a company folder (useMultiFileAuthState), uploads 812 pre-keys with Baileys'
// getNextPreKeysNode (what uploadPreKeysToServerIfRequired sends when the server holds none)
// into a stand-in server pool; three contacts take keys from that pool and message us (libsignal
// deletes those keys: removePreKey); the rest of the pool is handed out to contacts that never
// write, so the server runs dry and the next connect uploads 812 more. A new contact then fetches
// our bundle: the server's <user> node is built from our upload node (registration, identity,
// skey, and one <key> from the pool, lowest id first), parsed by Baileys' parseAndInjectE2ESessions
// and encrypted with Baileys' signal repository (libsignal SessionBuilder/SessionCipher): a
// PreKeyWhisperMessage. Pre-key files are then aged two days so the cleanup's live-file guard
// does not hide what the rule decides.
// receive: Baileys' repository on FOLDER decrypts it (SessionCipher.decryptPreKeyWhisperMessage).
// `ok` expects the plaintext and the used pre-key gone afterwards; `fail` expects libsignal's
// "Invalid PreKey ID".
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
const COMPANY = 'company_962399'
const ME = { id: '5511987650000:7@s.whatsapp.net', lid: '987650000000001:7@lid', name: 'Pre-key shop' }

async function open(folder) {
	const { state, saveCreds } = await useMultiFileAuthState(folder)
	const keys = addTransactionCapability(state.keys, logger, { maxCommitRetries: 1, delayBetweenTriesMs: 1 })
	const auth = { creds: state.creds, keys }
	return { state, auth, saveCreds, repo: makeLibSignalRepository(auth, logger) }
}

// The server's pool: the <key> nodes of every upload, minus those handed out.
const pool = []
let uploadNode

async function upload(us, count) {
	const { update, node } = await getNextPreKeysNode(us.auth, count)
	Object.assign(us.state.creds, update)
	await us.saveCreds()
	uploadNode = node
	pool.push(...getBinaryNodeChildren(getBinaryNodeChild(node, 'list'), 'key'))
	return node
}

// What the server answers a contact's encrypt/get for our device: one <user> with our
// registration, identity, signed pre-key and one pre-key from the pool (lowest id first).
function handOut() {
	const key = pool.shift()
	const child = tag => uploadNode.content.find(c => c.tag === tag)
	const user = {
		tag: 'user',
		attrs: { jid: ME.id },
		content: [child('registration'), child('type'), child('identity'), child('skey'), key]
	}
	const id = Buffer.from(key.content.find(c => c.tag === 'id').content).readUIntBE(0, 3)
	return { id, reply: { tag: 'iq', attrs: {}, content: [{ tag: 'list', attrs: {}, content: [user] }] } }
}

// A contact fetches our bundle through Baileys' parser and writes its first message.
async function contact(root, phone, text) {
	const peer = await open(join(root, '..', 'peers', phone))
	const { id, reply } = handOut()
	await parseAndInjectE2ESessions(reply, peer.repo)
	const msg = await peer.repo.encryptMessage({ jid: ME.id, data: Buffer.from(text) })
	if (msg.type !== 'pkmsg') throw new Error(`expected a pkmsg, got ${msg.type}`)
	return { preKeyId: id, from: `${phone}@s.whatsapp.net`, text, ciphertext: msg.ciphertext.toString('base64') }
}

async function decrypt(folder, m) {
	const us = await open(folder)
	const plain = await us.repo.decryptMessage({ jid: m.from, type: 'pkmsg', ciphertext: Buffer.from(m.ciphertext, 'base64') })
	return Buffer.from(plain).toString()
}

const [mode, a, b, expect] = process.argv.slice(2)
if (mode === 'make') {
	const folder = join(a, COMPANY)
	await mkdir(folder, { recursive: true })
	const us = await open(folder)
	Object.assign(us.state.creds, {
		me: ME,
		account: { details: Buffer.from('x'), accountSignatureKey: Buffer.alloc(32), accountSignature: Buffer.alloc(64), deviceSignature: Buffer.alloc(64) },
		signedPreKey: signedKeyPair(us.state.creds.signedIdentityKey, 1)
	})
	await us.saveCreds()
	// Pairing: the server holds none, so 812.
	await upload(us, INITIAL_PREKEY_COUNT)
	// Three contacts write to us: libsignal uses and deletes their keys.
	for (let i = 0; i < 3; i++) {
		const m = await contact(a, `55219000000${i}`, `hello ${i}`)
		if ((await decrypt(folder, m)) !== m.text) throw new Error('a first-batch message did not decrypt')
	}
	// The rest is handed out to contacts that never write (the server forgets them); then a
	// reconnect finds the server empty and uploads 812 more.
	while (pool.length) handOut()
	await upload(us, INITIAL_PREKEY_COUNT)
	// A new contact's first message, against the bundle the server hands out now.
	const m = await contact(a, '5531988887777', 'first contact after cleanup')
	const files = (await readdir(folder)).filter(f => f.startsWith('pre-key-'))
	const old = Date.now() / 1000 - 2 * 86400
	for (const f of files) await utimes(join(folder, f), old, old)
	await writeFile(b, JSON.stringify({ company: COMPANY, creds: { nextPreKeyId: us.state.creds.nextPreKeyId, firstUnuploadedPreKeyId: us.state.creds.firstUnuploadedPreKeyId }, preKeyFiles: files.length, ...m }, null, 1))
	console.log(`made ${COMPANY}: ${files.length} pre-key files, nextPreKeyId ${us.state.creds.nextPreKeyId}; the new contact got pre-key ${m.preKeyId}`)
} else if (mode === 'receive') {
	const m = JSON.parse(await readFile(b, 'utf-8'))
	const file = join(a, `pre-key-${m.preKeyId}.json`)
	const present = async () => (await readdir(a)).includes(`pre-key-${m.preKeyId}.json`)
	let got, err
	try {
		got = await decrypt(a, m)
	} catch (e) {
		err = e
	}
	if (expect === 'ok') {
		if (err) { console.log(`FAIL pre-key ${m.preKeyId}: the first message did not decrypt: ${err.message ?? err}`); process.exit(1) }
		if (got !== m.text) { console.log(`FAIL pre-key ${m.preKeyId}: decrypted to ${JSON.stringify(got)}`); process.exit(1) }
		if (await present()) { console.log(`FAIL ${file}: libsignal did not remove the used pre-key`); process.exit(1) }
		console.log(`pre-keys ok: a new contact's first message (pre-key ${m.preKeyId}) decrypts in ${a}`)
	} else {
		const msg = String(err?.message ?? err)
		if (!err || !msg.includes('Invalid PreKey ID')) { console.log(`FAIL expected "Invalid PreKey ID" in ${a}, got ${err ? msg : JSON.stringify(got)}`); process.exit(1) }
		console.log(`pre-keys ok: with the pre-key removed, libsignal refuses the first message (${msg})`)
	}
} else {
	console.error('usage: node prekeys.mjs make ROOT OUT | receive FOLDER OUT ok|fail')
	process.exit(2)
}
