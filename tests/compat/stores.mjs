// Moves Baileys-written auth folders into the community SQL stores through each package's own
// code, and back out through the same code, for baileys-janitor's compatibility test.
//   node stores.mjs create KIND ADMIN_URL DB        a fresh database (KIND: mysql | pg)
//   node stores.mjs drop KIND ADMIN_URL DB
//   node stores.mjs to KIND MANIFEST FOLDERS URL    every account into the store, by the package
//   node stores.mjs connect KIND MANIFEST URL       the app connects: Baileys' creds rewritten
//   node stores.mjs from KIND MANIFEST URL FOLDERS  what the package still reads, as folders
//
// mysql: mysql-baileys' useMySQLAuthState (table `auth(session, id, value)`, id `<type>-<id>`,
// creds row `creds`, values JSON.stringify(value, BufferJSON.replacer)).
// pg: postgres-baileys' usePostgreSQLAuthState (table `auth_data(session_key, data)`, key
// `<sid>:<type>-<id>`, creds key `<sid>:auth_creds`, Buffers as {"type":"Buffer","data":[ints]}).
// Values come from the folder as Baileys' own readData revives them (BufferJSON.reviver), so the
// package serialises real Buffers exactly as it does for a live socket. Reading back, each key
// the package still returns is written into a folder with Baileys' useMultiFileAuthState, for
// check.mjs to read through Baileys.
import { readFile } from 'fs/promises'
import { join } from 'path'
import { createRequire } from 'module'
import { BufferJSON, useMultiFileAuthState } from 'baileys'

const require = createRequire(import.meta.url)
const [mode, kind, ...args] = process.argv.slice(2)

function mysqlConfig(url, session) {
	const u = new URL(url)
	return {
		host: u.hostname,
		port: Number(u.port || 3306),
		user: decodeURIComponent(u.username || 'root'),
		password: u.password ? decodeURIComponent(u.password) : undefined,
		database: u.pathname.slice(1),
		session
	}
}

// The package's auth state for one account: { state, saveCreds }.
async function open(kind, url, session) {
	if (kind === 'mysql') {
		const { useMySQLAuthState } = require('mysql-baileys')
		return useMySQLAuthState(mysqlConfig(url, session))
	}
	const { usePostgreSQLAuthState } = require('postgres-baileys')
	const pg = require('pg')
	pools[url] ??= new pg.Pool({ connectionString: url })
	return usePostgreSQLAuthState(pools[url], session)
}
const pools = {}

async function admin(kind, url, sql) {
	if (kind === 'mysql') {
		const mysql = require('mysql2/promise')
		const c = await mysql.createConnection(url)
		try {
			return (await c.query(sql))[0]
		} finally {
			await c.end()
		}
	}
	const pg = require('pg')
	const c = new pg.Client({ connectionString: url })
	await c.connect()
	try {
		return (await c.query(sql)).rows
	} finally {
		await c.end()
	}
}

function withDatabase(url, db) {
	const u = new URL(url)
	u.pathname = `/${db}`
	return u.toString()
}

if (mode === 'create') {
	const [adminUrl, db] = args
	await admin(kind, adminUrl, `CREATE DATABASE ${db}`)
	if (kind === 'pg') {
		// postgres-baileys 1.5.0 starts its CREATE TABLE without awaiting it (constructor): a
		// first account could read before the table exists. Its own statement, run first.
		await admin(kind, withDatabase(adminUrl, db), 'CREATE TABLE IF NOT EXISTS auth_data (session_key VARCHAR(255) PRIMARY KEY, data TEXT NOT NULL)')
	}
} else if (mode === 'drop') {
	const [adminUrl, db] = args
	await admin(kind, adminUrl, kind === 'pg' ? `DROP DATABASE IF EXISTS ${db} WITH (FORCE)` : `DROP DATABASE IF EXISTS ${db}`)
} else if (mode === 'to') {
	const [manifestPath, folders, url] = args
	const manifest = JSON.parse(await readFile(manifestPath, 'utf-8'))
	let keys = 0
	for (const [company, m] of Object.entries(manifest)) {
		const folder = join(folders, company)
		const { state: files } = await useMultiFileAuthState(folder)
		const store = await open(kind, url, company)
		for (const [file, [category, id]] of Object.entries(m.files)) {
			if (category === 'creds') continue
			// Baileys' readData: the file's JSON revived with BufferJSON (Buffers, not base64).
			const value = JSON.parse(await readFile(join(folder, file), 'utf-8'), BufferJSON.reviver)
			await store.state.keys.set({ [category]: { [id]: value } })
			keys++
		}
		Object.assign(store.state.creds, files.creds)
		await store.saveCreds()
	}
	// mysql-baileys swallows failed queries after its retries: count what arrived.
	const rows = kind === 'mysql'
		? (await admin(kind, url, 'SELECT COUNT(*) AS n FROM auth'))[0].n
		: (await admin(kind, url, 'SELECT COUNT(*)::int AS n FROM auth_data'))[0].n
	const want = keys + Object.keys(manifest).length
	if (Number(rows) !== want) {
		console.log(`FAIL ${kind}: ${rows} rows written, ${want} expected`)
		process.exit(1)
	}
	console.log(`${kind}: ${want} rows written by the package`)
} else if (mode === 'connect') {
	// Baileys rewrites creds on each connection (here: its account sync time), through the
	// package's own saveCreds: the account is active, so its idle sessions age.
	const [manifestPath, url] = args
	const manifest = JSON.parse(await readFile(manifestPath, 'utf-8'))
	for (const company of Object.keys(manifest)) {
		const store = await open(kind, url, company)
		store.state.creds.lastAccountSyncTimestamp = Math.floor(Date.now() / 1000)
		await store.saveCreds()
	}
} else if (mode === 'from') {
	const [manifestPath, url, folders] = args
	const manifest = JSON.parse(await readFile(manifestPath, 'utf-8'))
	for (const [company, m] of Object.entries(manifest)) {
		const store = await open(kind, url, company)
		const { state, saveCreds } = await useMultiFileAuthState(join(folders, company))
		Object.assign(state.creds, store.state.creds)
		await saveCreds()
		for (const [category, id] of Object.values(m.files)) {
			if (category === 'creds') continue
			const got = (await store.state.keys.get(category, [id]))[id]
			if (got != null) await state.keys.set({ [category]: { [id]: got } })
		}
	}
} else {
	console.error('usage: stores.mjs create|drop|to|connect|from KIND …')
	process.exit(2)
}
// Both packages keep connections open (keep-alive, pools): the work is done.
process.exit(0)
