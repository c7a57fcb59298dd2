// Writes the hostile test documents for tests/test_tokenizer.sh.
//   node hostile.js CLASSES.bin OUTDIR
// CLASSES.bin: meshtrain's class of every code point (0 other, 1 \p{L}, 2 \p{N}, 3 \s), one byte each, from
// `test_tokenizer classes` (GPT-2's Python `regex` module semantics, Unicode 15.0). This engine's (node's
// ICU, a later Unicode; JavaScript \s) classes are compared with it; the code points that differ go to
// diffs.txt and are kept out of the JavaScript comparison: there GPT-2's side is meshtrain's (checked
// against python3-regex by the shell script). Outputs:
//   hostile.json  hand-picked and generated hostile strings (valid UTF-8 once written as JSON)
//   allcp.json    every code point of planes 0 and 1, and samples of the others, in several contexts
//   raw.bin       documents with NUL and other controls, and invalid UTF-8 (uint32 length, bytes)
//   divergent.json strings with the differing code points, and long runs the JavaScript encoder is too
//                 slow on (quadratic), for the Python reference only
'use strict';
const fs = require('fs');
const path = require('path');
const [classesPath, outDir] = process.argv.slice(2);
const ours = fs.readFileSync(classesPath);

const reL = /^\p{L}$/u, reN = /^\p{N}$/u, reS = /^\s$/u;
const jsClass = c => { const s = String.fromCodePoint(c); return reL.test(s) ? 1 : reN.test(s) ? 2 : reS.test(s) ? 3 : 0; };
const isSurrogate = c => c >= 0xD800 && c <= 0xDFFF;
const diffs = [];
for (let c = 0; c < 0x110000; c++) if (!isSurrogate(c) && jsClass(c) !== ours[c]) diffs.push(c);
const divergent = new Set(diffs);
const clean = s => ![...s].some(ch => divergent.has(ch.codePointAt(0)));
fs.writeFileSync(path.join(outDir, 'diffs.txt'),
  diffs.map(c => `${c.toString(16)} ${ours[c]} ${jsClass(c)}`).join('\n') + '\n');

let seed = 12345;
const rand = n => { seed = (seed * 1103515245 + 12345) >>> 0; return (seed >>> 8) % n; };
const pick = a => a[rand(a.length)];

const fixed = [
  // emoji, ZWJ sequences, modifiers, flags, keycaps, variation selectors
  '👨‍👩‍👧‍👦 family 🏳️‍🌈 flag 👍🏽👍🏿 🇺🇸🇫🇷🇯🇵 1️⃣ #️⃣ ❤️ ☺︎ 🧑🏾‍🚀 🫠🫡', '😀😀😀!!!😀 a😀b 😀1',
  // combining marks, zalgo, Indic and Thai clusters, Hangul jamo
  'e\u0301 e\u0301\u0301\u0301 \u0301start Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǫ̗ text', 'नमस्ते दुनिया क्षत्रिय', 'สวัสดีครับ ภาษาไทย', '\u1100\u1161\u11a8 한국어 텍스트',
  // CJK and full-width forms
  '日本語のテキスト、中文文本。「引用」ｆｕｌｌｗｉｄｔｈ１２３！ 漢字かなカナ', '𠀀𠀁𪛖 𫝀 CJK ext',
  // right-to-left text and bidi controls
  'مرحبا بالعالم 123 ٤٥٦ ۷۸۹', 'שָׁלוֹם עוֹלָם', 'abc \u200fאבג\u200e def \u202eevil\u202c \u2066iso\u2069',
  // controls (C0 except NUL, DEL, C1 except U+0085)
  Array.from({ length: 31 }, (_, i) => String.fromCharCode(i + 1)).join('') + '\x7f',
  Array.from({ length: 32 }, (_, i) => String.fromCharCode(0x80 + i)).filter(c => c !== '\x85').join(' x'),
  'a\x1cb\x1dc\x1ed\x1fe \x1c \x0b\x0c\t\v',
  // long whitespace runs
  ' '.repeat(10000), 'a' + ' '.repeat(10000) + 'b', '\n'.repeat(10000), ' \t'.repeat(5000) + 'x',
  '\u3000'.repeat(10000) + 'x', '\u00a0'.repeat(1000) + 'y \u00a0z', ' '.repeat(9999) + '\n' + ' '.repeat(3) + 'q',
  '\u2028\u2029 \u2000\u2001\u200a\u202f\u205f\u1680x',
  // contractions, typographic apostrophes
  "don't won’t it’s I'm YOU'RE we’ll ’s 's 'S 't 're 've 'm 'll 'd 'x ''s ''' rock 'n' roll l'homme",
  "they've'll'd 'ss 'lll '\u2019s \u2018quoted\u2019 \u201cdouble\u201d it\u02bcs",
  // digits with separators, other numbers
  '1,234,567.89 1 234 567 1\'234\'567 1_000_000 ١٢٣٬٤٥٦ 12:30 3.14e-10 ½ ² Ⅻ ① 0x1F -5 +6 1e9',
  '12345678901234567890123456789 ٠١٢٣٤٥٦٧٨٩ ०१२३ 𝟘𝟙𝟚',
  // mixed newlines
  'a\r\nb\rc\nd\r\n\r\n\n\re', ' \r\n x', 'line1 \nline2\t\n\n', '\r\r\r\n\n\n  \r\n',
  // long pieces, code, markup, the EOT string as text
  'a'.repeat(20000), 'ab'.repeat(10000), '-=-='.repeat(5000) + '!', '////' + '=*'.repeat(3000),
  'function f(x) { return x*2; } // comment\n\tif (a<=b && c!=d) {}\n', '<|endoftext|> a<|endoftext|>b <|endoftext|>',
  'https://example.com/path?q=1&r=%20#frag user@example.org', '<html><body class="x">Hi&nbsp;there</body></html>',
];

const atoms = [' ', '  ', '\n', '\r\n', '\t', "'s", "'t", "’", "'", 'a', 'Hello', ' world', 'ÿ', 'é', 'e\u0301',
  '日本', '😀', '👨‍👩‍👧', '1', '23', '٣', '½', '!', '?!', '...', ',', '-', '_', '\u00a0', '\u3000', '\u2028',
  'ς', 'Σ', 'ǅ', 'ﬁ', 'ß', 'İ', '\u200b', '\u200d', '\ufe0f', '\x01', '\x1f', '\x7f', '<|endoftext|>',
  'مرحبا', 'שלום', '한', 'ก', 'क्ष', '\u0300', '𝒳', '🇺🇸', '\ud83c\udffd'];
const generated = [];
for (let i = 0; i < 3000; i++) {
  let s = '';
  const n = 1 + rand(40);
  for (let k = 0; k < n; k++) s += pick(atoms);
  generated.push(s);
}
const hostile = fixed.concat(generated).filter(clean);
fs.writeFileSync(path.join(outDir, 'hostile.json'), JSON.stringify(hostile));

// Every code point of planes 0 and 1 and of U+E0000-U+E01FF (every 13th of planes 2-3, every 97th
// elsewhere) in contexts: after a space, doubled, before a letter or a number, before a newline. Plane 0
// gets one more context (to keep the JavaScript run short).
const allcp = [];
let chunk = '';
for (let c = 1; c < 0x110000; c++) {
  if (isSurrogate(c) || divergent.has(c)) continue;
  const plane = c >> 16;
  if (!(plane <= 1 || (c >= 0xE0000 && c <= 0xE01FF) || (plane <= 3 && c % 13 === 0) || c % 97 === 0)) continue;
  const ch = String.fromCodePoint(c);
  chunk += plane === 0 ? `x ${ch}${ch}a${ch} 1${ch}\n` : `x ${ch}${ch}1${ch}\n`;
  if (chunk.length > 500) { allcp.push(chunk); chunk = ''; } // short: the JS encoder is quadratic per document
}
allcp.push(chunk);
fs.writeFileSync(path.join(outDir, 'allcp.json'), JSON.stringify(allcp));

// Raw documents: NUL and controls, then random byte strings with invalid UTF-8.
const raw = [Buffer.from('a\0b \0\0 \0x\0' + '\x01\x02\r\n\0', 'latin1'), Buffer.from('\0'.repeat(100), 'latin1'),
  Buffer.from([0xef, 0xbb, 0xbf, 0x68, 0x69]).subarray(3)];
const pieces = [[0x61], [0x20], [0x0a], [0xc3, 0xa9], [0xe6, 0x97, 0xa5], [0xf0, 0x9f, 0x98, 0x80], [0x80], [0xbf],
  [0xc0, 0xaf], [0xc3], [0xe6, 0x97], [0xf0, 0x9f], [0xf0, 0x9f, 0x98], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80],
  [0xff], [0xfe], [0xf5], [0xe0, 0x80, 0x80], [0x27, 0x73], [0x31]];
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
while (raw.length < 3000) {
  const bytes = [];
  const n = 1 + rand(30);
  for (let k = 0; k < n; k++) bytes.push(...(rand(4) ? pick(pieces) : [rand(256)]));
  const buf = Buffer.from(bytes);
  if (clean(decoder.decode(buf))) raw.push(buf);
}
const rec = [];
for (const b of raw) { const h = Buffer.alloc(4); h.writeUInt32LE(b.length); rec.push(h, b); }
fs.writeFileSync(path.join(outDir, 'raw.bin'), Buffer.concat(rec));

// For the Python reference: the differing code points in contexts, plus BOM and NEL cases.
const div = ['a'.repeat(100000), 'ab'.repeat(30000), '\ufeffBOM at start', 'a\u0085b \u0085 c  \u0085\u0085d', ' \ufeff x\ufeff\ufeffy', 'a\u180eb \u180e'];
let d = '';
for (const c of diffs) {
  const ch = String.fromCodePoint(c);
  d += `x ${ch}${ch}a${ch} 1${ch}\n`;
  if (d.length > 4000) { div.push(d); d = ''; }
}
div.push(d);
fs.writeFileSync(path.join(outDir, 'divergent.json'), JSON.stringify(div));
console.log(`${diffs.length} code points classed differently by this engine; hostile ${hostile.length}, allcp ${allcp.length}, raw ${raw.length}, divergent ${div.length} documents`);
