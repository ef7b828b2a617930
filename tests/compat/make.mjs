// Builds Baileys auth folders with Baileys' own code, for baileys-janitor's compatibility test.
//   node make.mjs ROOT COMPANIES
// Each company: useMultiFileAuthState + creds shaped like a paired account, pre-keys, sessions
// and identity keys made by libsignal's SessionBuilder (injectE2ESession), our own sender key
// (encryptGroupMessage) with its sender-key-memory, other members' sender keys (processed
// distribution messages), lid-mappings with their _reverse (LIDMappingStore), app-state keys
// and versions, device lists and tctokens. Then realistic ages, and ROOT/manifest.json.
import { mkdir, readdir, utimes, writeFile } from 'fs/promises'
import { join } from 'path'
import {
	addTransactionCapability,
	Curve,
	generateSignalPubKey,
	initAuthCreds,
	signedKeyPair,
	useMultiFileAuthState
} from 'baileys'
import { makeLibSignalRepository } from 'baileys/lib/Signal/libsignal.js'

const logger = {
	level: 'silent',
	child() { return logger },
	trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}
}

let seed = 42
const rand = n => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n }
const digits = n => Array.from({ length: n }, (_, i) => (i === 0 ? 1 + rand(9) : rand(10))).join('')

// file name → [category, id] of every key Baileys' keys.set wrote (fixFileName applied).
const written = new Map()
const fixFileName = f => f.replace(/\//g, '__').replace(/:/g, '-')

async function authFolder(folder, record = false) {
	const { state, saveCreds } = await useMultiFileAuthState(folder)
	if (record) {
		const set = state.keys.set
		state.keys.set = async data => {
			for (const category in data) {
				for (const id in data[category]) {
					const file = fixFileName(`${category}-${id}.json`)
					if (data[category][id]) written.set(file, [category, id])
					else written.delete(file)
				}
			}
			return set(data)
		}
	}
	const keys = addTransactionCapability(state.keys, logger, { maxCommitRetries: 1, delayBetweenTriesMs: 1 })
	const auth = { creds: state.creds, keys }
	return { state, auth, saveCreds, repo: makeLibSignalRepository(auth, logger) }
}

// A peer's pre-key bundle, the way Baileys parses one from the server.
function bundle() {
	const peer = initAuthCreds()
	const preKey = Curve.generateKeyPair()
	return {
		registrationId: peer.registrationId,
		identityKey: generateSignalPubKey(peer.signedIdentityKey.public),
		signedPreKey: {
			keyId: peer.signedPreKey.keyId,
			publicKey: generateSignalPubKey(peer.signedPreKey.keyPair.public),
			signature: peer.signedPreKey.signature
		},
		preKey: { keyId: 1 + rand(1000), publicKey: generateSignalPubKey(preKey.public) }
	}
}

async function company(root, id, manifest) {
	const folder = join(root, `company_${id}`)
	await mkdir(folder, { recursive: true })
	written.clear()
	const { state, auth, saveCreds, repo } = await authFolder(folder, true)
	const phone = `55${digits(11)}`
	const lid = digits(15)
	const device = 1 + rand(30)
	const me = { id: `${phone}:${device}@s.whatsapp.net`, lid: `${lid}:${device}@lid`, name: `Shop ${id}` }

	// Pre-keys: 120 minted, 100 uploaded (ids 1..120, next 121, first unuploaded 101).
	const preKeys = {}
	for (let i = 1; i <= 120; i++) preKeys[i] = Curve.generateKeyPair()
	await auth.keys.set({ 'pre-key': preKeys })
	Object.assign(state.creds, {
		me,
		account: { details: Buffer.from('x'), accountSignatureKey: Buffer.alloc(32), accountSignature: Buffer.alloc(64), deviceSignature: Buffer.alloc(64) },
		nextPreKeyId: 121,
		firstUnuploadedPreKeyId: 101,
		signedPreKey: signedKeyPair(state.creds.signedIdentityKey, 1)
	})
	await saveCreds()

	// LID mappings (pn → lid, and the _reverse), through Baileys' own store.
	const contacts = []
	for (let i = 0; i < 12; i++) {
		const pn = `55${digits(11)}`
		const l = digits(15)
		contacts.push({ pn, lid: l })
	}
	await repo.lidMapping.storeLIDPNMappings(contacts.map(c => ({ lid: `${c.lid}@lid`, pn: `${c.pn}@s.whatsapp.net` })))

	// Sessions (+ identity keys) with phone-number and LID addresses, multi-device too.
	const jids = [
		...contacts.slice(0, 4).map(c => `${c.lid}@lid`),
		...contacts.slice(4, 6).map(c => `${c.lid}:2@lid`),
		`55${digits(11)}@s.whatsapp.net`,
		`55${digits(11)}:12@s.whatsapp.net`,
		`${contacts[6].pn}@s.whatsapp.net` // has a mapping: stored under its LID
	]
	for (const jid of jids) {
		const session = bundle()
		await repo.injectE2ESession({ jid, session })
		// Baileys saves a contact's identity key under the same signal address when it first
		// decrypts from them (signalStorage.saveIdentity); do what that does.
		await auth.keys.set({ 'identity-key': { [repo.jidToSignalProtocolAddress(jid)]: session.identityKey } })
	}

	// Groups: our own sender key (+ its memory), and other members' sender keys.
	const groups = [`120363${digits(12)}@g.us`, `120363${digits(12)}@g.us`, `120363${digits(12)}@g.us`]
	for (const group of groups) {
		await repo.encryptGroupMessage({ group, meId: me.lid, data: Buffer.from("hello group") })
		await auth.keys.set({ 'sender-key-memory': { [group]: { [`${contacts[0].lid}@lid`]: true } } })
		for (const c of contacts.slice(0, 3)) {
			const other = await authFolder(join(root, '..', 'peers', `${id}-${c.lid}`))
			const { senderKeyDistributionMessage } = await other.repo.encryptGroupMessage({ group, meId: `${c.lid}@lid`, data: Buffer.from("hi") })
			await repo.processSenderKeyDistributionMessage({
				item: { groupId: group, axolotlSenderKeyDistributionMessage: senderKeyDistributionMessage },
				authorJid: `${c.lid}@lid`
			})
		}
	}

	// App state: sync keys (base64 ids, '/' becomes '__') and versions.
	const appKeys = {}
	for (let i = 0; i < 4; i++) {
		const keyId = Buffer.from([0, 0, 0, rand(256), rand(256), 63 + i * 64]).toString('base64')
		appKeys[keyId] = { keyData: Buffer.alloc(32, i), fingerprint: { rawId: i, currentIndex: 0, deviceIndexes: [0] }, timestamp: 1700000000 + i }
	}
	await auth.keys.set({ 'app-state-sync-key': appKeys })
	const versions = {}
	for (const name of ['critical_block', 'critical_unblock_low', 'regular_high', 'regular_low', 'regular']) {
		versions[name] = { version: 1 + rand(100), hash: Buffer.alloc(128), indexValueMap: {} }
	}
	await auth.keys.set({ 'app-state-sync-version': versions })
	await auth.keys.set({ 'device-list': Object.fromEntries(contacts.slice(0, 5).map(c => [c.pn, ['0', '12']])) })
	await auth.keys.set({ tctoken: { [`${contacts[0].lid}@lid`]: { token: Buffer.alloc(16), timestamp: '1700000000' }, __index: { jids: [`${contacts[0].lid}@lid`] } } })

	// Ages: everything two months old except a few fresh files, so the rules have work to do.
	const now = Date.now() / 1000
	const files = (await readdir(folder)).sort()
	for (const [i, f] of files.entries()) {
		const age = f === 'creds.json' ? 3600 : i % 7 === 0 ? 60 : 60 * 86400
		await utimes(join(folder, f), now - age, now - age)
	}
	manifest[`company_${id}`] = {
		me,
		nextPreKeyId: 121,
		firstUnuploadedPreKeyId: 101,
		groups,
		ownSenderKeys: groups.map(g => `sender-key-${g}--${lid}_1--${device}.json`),
		files: Object.fromEntries(files.map(f => [f, f === 'creds.json' ? ['creds', ''] : written.get(f) ?? ['?', '']]))
	}
}

const [root, count = '3'] = process.argv.slice(2)
const manifest = {}
for (let i = 0; i < Number(count); i++) await company(root, 962300 + i, manifest)
await writeFile(join(root, 'manifest.json'), JSON.stringify(manifest, null, 1))
console.log(`made ${count} companies with Baileys under ${root}`)
