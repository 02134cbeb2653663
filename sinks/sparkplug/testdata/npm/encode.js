// Encodes Sparkplug B payloads with Eclipse Tahu's reference JavaScript
// library (npm sparkplug-payload), so that Weir's host ingestion can be
// fed what another implementation produces (sources/mqtt tests). Input:
// one JSON payload description per line on stdin, in sparkplug-payload's
// own form: {"timestamp", "seq", "metrics": [{"name", "alias", "type",
// "value", "timestamp", "properties", ...}]}, where a Template value is
// {"version", "templateRef", "isDefinition", "metrics", "parameters"} and a
// DataSet value {"numOfColumns", "columns", "types", "rows"}. Output: one
// line per payload, the base64 wire form or {"error": "..."}.
'use strict';
const readline = require('readline');
const sparkplug = require('sparkplug-payload').get('spBv1.0');

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on('line', (line) => {
  line = line.trim();
  if (line === '') return;
  let out;
  try {
    out = Buffer.from(sparkplug.encodePayload(JSON.parse(line))).toString('base64');
  } catch (e) {
    out = JSON.stringify({ error: String(e) });
  }
  process.stdout.write(out + '\n');
});
