// Checks baileys-janitor's work with Baileys itself.
//   node check.mjs types MANIFEST DRY_RUN_JSON   every file Baileys wrote was classified as its type
//   node check.mjs after MANIFEST ROOT           after a cleanup, Baileys still reads what it must
// Prints one line per failure and a closing "N passed, M failed"; exits 1 on any failure.
import { readFile, readdir } from 'fs/promises'
import { join } from 'path'
import { useMultiFileAuthState } from 'baileys'

const [mode, manifestPath, arg] = process.argv.slice(2)
const manifest = JSON.parse(await readFile(manifestPath, 'utf-8'))
let passed = 0
let failed = 0
const check = (ok, what) => {
	if (ok) passed++
	else {
		failed++
		console.log(`FAIL ${what}`)
	}
}

if (mode === 'types') {
	const report = JSON.parse(await readFile(arg, 'utf-8'))
	for (const c of report.companies) {
		const types = Object.fromEntries(c.decisions.map(d => [d.file, d.type]))
		for (const [file, [category]] of Object.entries(manifest[c.company].files)) {
			check(category !== '?', `${c.company}/${file}: Baileys' category was not recorded`)
			check(types[file] === category, `${c.company}/${file}: Baileys wrote it as ${category}, classified as ${types[file]}`)
		}
	}
} else if (mode === 'after') {
	for (const [company, m] of Object.entries(manifest)) {
		const folder = join(arg, company)
		const { state } = await useMultiFileAuthState(folder)
		const present = new Set(await readdir(folder))
		check(state.creds.me?.id === m.me.id, `${company}: creds me.id is ${state.creds.me?.id}, was ${m.me.id}`)
		check(state.creds.me?.lid === m.me.lid, `${company}: creds me.lid changed`)
		for (const [file, [category, id]] of Object.entries(m.files)) {
			if (['lid-mapping', 'app-state-sync-key', 'app-state-sync-version', 'tctoken'].includes(category)) {
				const got = await state.keys.get(category, [id])
				check(got[id] != null, `${company}: ${category} ${id} is no longer readable through keys.get`)
			}
			if (category === 'pre-key' && (Number(id) >= m.firstUnuploadedPreKeyId || Number(id) === m.nextPreKeyId - 1)) {
				const got = await state.keys.get('pre-key', [id])
				check(got[id] != null, `${company}: protected pre-key ${id} is gone`)
			}
			if (category === 'identity-key' && !present.has(file)) {
				check(!present.has(file.replace(/^identity-key-/, 'session-')), `${company}: ${file} removed but its session stayed`)
			}
		}
		for (const [i, group] of m.groups.entries()) {
			const own = m.ownSenderKeys[i]
			const memory = `sender-key-memory-${group}.json`
			if (!present.has(own)) {
				check(!present.has(memory), `${company}: our sender key ${own} removed while ${memory} stays`)
			} else {
				passed++
			}
		}
	}
} else {
	console.error('usage: node check.mjs types|after MANIFEST ARG')
	process.exit(2)
}
console.log(`compat ${mode}: ${passed} passed, ${failed} failed`)
process.exit(failed ? 1 : 0)
