'use strict';
// Independent Diameter client built on node `diameter` (node-diameter) 0.7.0, for interop tests.
//
//   node diameter_client.js --port P --scenario FILE [--host H]
//
// FILE is JSON: { "origin_host", "origin_realm", "timeout_ms", "cer": [AVP...], "steps": [STEP...],
// "disconnect": true|false }. A STEP is { "name", "application" (id), "command" (node-diameter's
// name, e.g. "Credit-Control"), "session_id", "avps": [AVP...] }, or { "pause_ms" } to stay idle.
// An AVP is [KEY, VALUE]: KEY is a name the dictionary has once (or once with vendor 0) or a
// numeric [code, vendor-id] pair; VALUE is a number, a string, or for a Grouped AVP a list of
// AVPs. Unsigned64 numbers may exceed 2^32.
//
// Connects, sends the CER, then each step strictly one after the other (0.7.0 decodes at most one
// message per TCP read, so pipelining would lose answers), then a DPR when "disconnect" is set.
// Prints one JSON line per answer: { "step", "command", "application_id", "flags",
// "hop_by_hop_ok", "end_to_end_ok", "end_to_end" (the request's), "result", "result_code",
// "session_id", "avps" }; a line per request the server sends ({ "request": command }, answered
// 2001); { "done": true, "refused" } at the end. A CEA other than 2001 ends the run ("refused",
// exit code 3). The library's decoder throws on any AVP or enumerated value its dictionary lacks:
// that surfaces as an { "error" } line and exit code 2. Exit 1: any other failure (timeout,
// refused connection).
const fs = require('fs');
const path = require('path');
const Long = require('long');
const diameter = require('diameter');
const dictionary = require('diameter/lib/diameter-dictionary');

const DICTIONARY_JSON = JSON.parse(
  fs.readFileSync(path.join(path.dirname(require.resolve('diameter/package.json')), 'dictionary.json'), 'utf8'));

function parseArgs(argv) {
  const o = { host: '127.0.0.1', port: null, scenario: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--host' && i + 1 < argv.length) o.host = argv[++i];
    else if (a === '--port' && i + 1 < argv.length) o.port = Number(argv[++i]);
    else if (a === '--scenario' && i + 1 < argv.length) o.scenario = argv[++i];
    else throw new Error('unexpected argument: ' + a);
  }
  if (!(o.port > 0) || !o.scenario) throw new Error('usage: node diameter_client.js --port P --scenario FILE');
  return o;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

let opts;
let scenario;
try {
  opts = parseArgs(process.argv.slice(2));
  scenario = JSON.parse(fs.readFileSync(opts.scenario, 'utf8'));
} catch (e) {
  process.stderr.write(e.message + '\n');
  process.exit(64);
}

// --- runtime dictionary patches (node_modules stays untouched) ---------------------------------------

// 0.7.0 knows no 3GPP Sy application (only "ALU Sy" 111 and "Ericsson Sy"): add 16777302.
const EXTRA_APPLICATIONS = [{ code: 16777302, name: '3GPP Sy' }];
const originalById = dictionary.getApplicationById;
const originalByName = dictionary.getApplicationByName;
dictionary.getApplicationById = (id) => EXTRA_APPLICATIONS.find((a) => a.code === id) || originalById(id);
dictionary.getApplicationByName = (name) =>
  EXTRA_APPLICATIONS.find((a) => a.name === name) || originalByName(name);

// Name lookups return the first match whatever its vendor ('Reporting-Reason' is Vodafone's 261,
// 'Event-Trigger' 3GPP2's 803): every AVP is resolved here to its exact (code, vendor) entry and
// handed to the encoder under a synthetic name that only this lookup understands.
const exact = new Map();
const originalAvpByName = dictionary.getAvpByName;
dictionary.getAvpByName = (name) => exact.get(name) || originalAvpByName(name);

function resolve(key) {
  let code;
  let vendor;
  if (Array.isArray(key)) {
    [code, vendor] = key;
  } else {
    let matches = DICTIONARY_JSON.avps.filter((a) => a.name === key);
    if (matches.length > 1) matches = matches.filter((a) => a.vendorId === 0); // the IETF one, if any
    if (matches.length !== 1) {
      throw new Error(`AVP name ${key} matches ${matches.length} dictionary entries: use [code, vendor]`);
    }
    code = matches[0].code;
    vendor = matches[0].vendorId;
  }
  const entry = dictionary.getAvpByCodeAndVendorId(code, vendor);
  if (!entry) throw new Error(`AVP ${code} of vendor ${vendor} is not in node-diameter's dictionary`);
  const synthetic = `${code}/${vendor}`;
  exact.set(synthetic, entry);
  return { name: synthetic, entry };
}

function toBody(avps) {
  return avps.map(([key, value]) => {
    const { name, entry } = resolve(key);
    if (entry.type === 'Grouped') return [name, toBody(value)];
    if (entry.type === 'Unsigned64' || entry.type === 'Integer64') {
      const unsigned = entry.type === 'Unsigned64';
      return [name, typeof value === 'string' ? Long.fromString(value, unsigned) : Long.fromNumber(value, unsigned)];
    }
    return [name, value];
  });
}

// Decoded answers back to JSON: Longs as decimal strings.
function toJson(body) {
  return body.map(([name, value]) => {
    if (Array.isArray(value)) return [name, toJson(value)];
    if (Long.isLong(value)) return [name, value.toString()];
    if (Buffer.isBuffer(value)) return [name, value.toString('hex')];
    return [name, value];
  });
}

const RESULT_CODES = new Map(
  (DICTIONARY_JSON.avps.find((a) => a.code === 268 && a.vendorId === 0).enums || []).map((e) => [e.name, e.code]));

function field(body, name) {
  const found = body.find((avp) => avp[0] === name);
  return found ? found[1] : undefined;
}

// --- the exchange ------------------------------------------------------------------------------------

const timeoutMs = scenario.timeout_ms || 5000;
let failed = false;
let refused = false;

function fail(code, message) {
  if (failed) return;
  failed = true;
  emit({ error: String(message) });
  process.exit(code);
}

const pauses = scenario.steps.reduce((total, step) => total + (step.pause_ms || 0), 0);
const overall = setTimeout(
  () => fail(1, 'scenario did not finish in time'), timeoutMs * (scenario.steps.length + 3) + pauses);

const socket = diameter.createConnection({ host: opts.host, port: opts.port, timeout: timeoutMs }, () => {
  run().then(
    () => {
      clearTimeout(overall);
      emit({ done: true, refused });
      socket.diameterConnection.end();
      if (refused) process.exitCode = 3;
    },
    (e) => fail(1, e && e.message ? e.message : e));
});

// The library reports decoding failures of incoming messages (unknown AVP, unknown enumerated value)
// as socket errors: those are what this client exists to catch.
socket.on('error', (e) => fail(2, e && e.message ? e.message : e));

socket.on('diameterMessage', (event) => {
  const command = event.message.command;
  emit({ request: command, application_id: event.message.header.applicationId });
  event.response.body = event.response.body.concat(toBody([
    ['Result-Code', 2001],
    ['Origin-Host', scenario.origin_host],
    ['Origin-Realm', scenario.origin_realm],
  ]));
  event.callback(event.response);
});

function baseRequest(command, avps) {
  const request = socket.diameterConnection.createRequest('Diameter Common Messages', command);
  // createRequest adds a random Session-Id to every request; CER and DPR have none (RFC 6733 5.3.1, 5.4.1)
  request.body = toBody(avps);
  return request;
}

async function exchange(step, request) {
  const answer = await socket.diameterConnection.sendRequest(request, timeoutMs);
  const resultName = field(answer.body, 'Result-Code');
  emit({
    step,
    command: answer.command,
    application_id: answer.header.applicationId,
    flags: answer.header.flags,
    hop_by_hop_ok: answer.header.hopByHopId === request.header.hopByHopId,
    end_to_end_ok: answer.header.endToEndId === request.header.endToEndId,
    end_to_end: request.header.endToEndId,
    result: resultName,
    result_code: typeof resultName === 'number' ? resultName : RESULT_CODES.get(resultName),
    session_id: field(answer.body, 'Session-Id'),
    avps: toJson(answer.body),
  });
  return answer;
}

async function run() {
  const identity = [['Origin-Host', scenario.origin_host], ['Origin-Realm', scenario.origin_realm]];
  const cea = await exchange('cer', baseRequest('Capabilities-Exchange', identity.concat(scenario.cer || [])));
  if (field(cea.body, 'Result-Code') !== 'DIAMETER_SUCCESS') {
    refused = true;
    return;
  }
  for (const step of scenario.steps) {
    if (step.pause_ms) {
      await new Promise((resolve) => setTimeout(resolve, step.pause_ms));
      continue;
    }
    const request = socket.diameterConnection.createRequest(step.application, step.command, step.session_id);
    request.header.flags.proxiable = true;
    request.body = request.body.concat(toBody(step.avps));
    await exchange(step.name, request);
  }
  if (scenario.disconnect) {
    await exchange('dpr', baseRequest('Disconnect-Peer', identity.concat([['Disconnect-Cause', 0]])));
  }
}
