// Decodes Sparkplug B payloads with Eclipse Tahu's reference JavaScript
// library (npm sparkplug-payload). Input: one base64 payload per line on
// stdin. Output: one JSON line per payload:
//   {"decoded": <sparkplug-payload decodePayload result>,
//    "raw": <protobufjs toObject of the message, oneof field names kept>}
// Longs are printed as decimal strings. "raw" is there because the
// library's decodeMetric reads values by datatype, which DATA messages
// omit (the spec says they SHOULD NOT carry it).
'use strict';
const readline = require('readline');
const Long = require('long');
const sparkplug = require('sparkplug-payload').get('spBv1.0');
const Proto = require('sparkplug-payload/lib/sparkplugPayloadProto');
const Payload = Proto.org.eclipse.tahu.protobuf.Payload;

function replacer(key, value) {
  if (value && typeof value === 'object' && 'low' in value && 'high' in value && 'unsigned' in value) {
    return Long.fromBits(value.low, value.high, value.unsigned).toString();
  }
  if (value instanceof Uint8Array) {
    return Buffer.from(value).toString('base64');
  }
  return value;
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  line = line.trim();
  if (line === '') return;
  const buf = Buffer.from(line, 'base64');
  let out;
  try {
    const decoded = sparkplug.decodePayload(buf);
    const raw = Payload.toObject(Payload.decode(buf), { longs: String, bytes: String, oneofs: true });
    out = { decoded, raw };
  } catch (e) {
    out = { error: String(e) };
  }
  process.stdout.write(JSON.stringify(out, replacer) + '\n');
});
