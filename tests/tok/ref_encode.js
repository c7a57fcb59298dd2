// Reference ids from the JavaScript encoder shipped in the npm package gpt-3-encoder (an independent
// implementation; run from the cache, never copied here).
//   node ref_encode.js PACKAGE_DIR OUT.bin DOC...
// DOC: a JSON array of strings, or a .bin file of raw documents (uint32 length, bytes) decoded as a
// TextDecoder does (invalid bytes -> U+FFFD, a BOM kept as text). OUT: per document uint32 n, n uint32 ids.
// Prints "BYTES SECONDS" (UTF-8 bytes encoded, encoding time) on stdout.
'use strict';
const fs = require('fs');
const path = require('path');
const { encode } = require(path.resolve(process.argv[2], 'Encoder.js'));

function readDocs(file) {
  const buf = fs.readFileSync(file);
  if (!file.endsWith('.bin')) return JSON.parse(buf.toString('utf8'));
  const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
  const docs = [];
  for (let at = 0; at + 4 <= buf.length;) {
    const n = buf.readUInt32LE(at);
    docs.push(decoder.decode(buf.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  return docs;
}

const out = [];
let bytes = 0, seconds = 0;
for (const file of process.argv.slice(4)) {
  for (const doc of readDocs(file)) {
    const start = process.hrtime.bigint();
    const ids = encode(doc);
    seconds += Number(process.hrtime.bigint() - start) / 1e9;
    bytes += Buffer.byteLength(doc, 'utf8');
    const rec = Buffer.alloc(4 + 4 * ids.length);
    rec.writeUInt32LE(ids.length, 0);
    ids.forEach((id, i) => rec.writeUInt32LE(id, 4 + 4 * i));
    out.push(rec);
  }
}
fs.writeFileSync(process.argv[3], Buffer.concat(out));
console.log(bytes, seconds.toFixed(3));
