'use strict';
// An independent USSD application built on node `smpp` (farhadi) 0.5.1: an ESME that answers USSD
// dialogues over SMPP 3.4 (ussd_service_op 5.3.2.44, its_session_info 5.3.2.43), for interop tests and
// benchmarks of our SMSC simulator's USSD relay.
//
//   node ussd_esme.js --port P --system-id X --password Y [--host H] [--depth D] [--dialogues N]
//                     [--quiet] [--timeout S]
//
// It binds as a transceiver. A PSSR indication deliver_sm (op 1) opens a dialogue keyed by
// (source_addr, session number): `*123*<n>#` is answered at once with a final PSSR response (op 0x11,
// end bit) in UCS-2 (data_coding 8); any other code gets a menu, a USSR request (op 2). Each USSR
// confirm (op 0x12) gets the next menu, and the D-th screen is the final PSSR response, which lists the
// choices. A USSR confirm with the end bit or a release (0x81) closes the dialogue. Every submit_sm
// echoes the session number with the next sequence number. Texts are Buffers with data_coding set:
// node smpp would label a GSM string IA5 (data_coding 1).
//
// After N dialogues have ended with an acknowledged final screen it unbinds and prints one JSON summary
// line: {completed, released, screens, deliver_sm, errors, elapsed_s}; exit 0, or 1 on error / timeout.
// Without --quiet every deliver_sm is also printed as a JSON line with event "deliver_sm".
const smpp = require('smpp');

function parseArgs(argv) {
  const o = { host: '127.0.0.1', port: null, systemId: '', password: '', depth: 3, dialogues: 1, quiet: false, timeout: 60 };
  const take = { '--host': 'host', '--system-id': 'systemId', '--password': 'password' };
  const num = { '--port': 'port', '--depth': 'depth', '--dialogues': 'dialogues', '--timeout': 'timeout' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a in take && i + 1 < argv.length) o[take[a]] = argv[++i];
    else if (a in num && i + 1 < argv.length) o[num[a]] = Number(argv[++i]);
    else if (a === '--quiet') o.quiet = true;
    else throw new Error('unexpected argument: ' + a);
  }
  if (!(o.port > 0) || !(o.depth >= 1) || !(o.dialogues >= 1)) {
    throw new Error('usage: node ussd_esme.js --port P --system-id X --password Y [--depth D] [--dialogues N]');
  }
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(e.message + '\n');
  process.exit(64);
}

const result = { completed: 0, released: 0, screens: 0, deliver_sm: 0, errors: [], elapsed_s: 0 };
const dialogues = new Map(); // "msisdn/session" -> { screen, choices }
let t0 = 0;
let finished = false;
const session = smpp.connect({ host: opts.host, port: opts.port });

function finish(code, error) {
  if (finished) return;
  finished = true;
  if (error) result.errors.push(error);
  result.elapsed_s = t0 ? Number(((performance.now() - t0) / 1000).toFixed(4)) : 0;
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

const timer = setTimeout(() => finish(1, 'timeout'), opts.timeout * 1000);

function gsm(text) {
  return { data_coding: 0, short_message: smpp.gsmCoder.encode(text, 0) };
}

function ucs2(text) {
  return { data_coding: 8, short_message: Buffer.from(text, 'utf16le').swap16() };
}

function answer(pdu, info, op, body) {
  const end = op === 0x11;
  const sequence = (info.sequence + 1) & 0x7f;
  result.screens++;
  session.submit_sm({
    service_type: 'USSD',
    source_addr_ton: 0, source_addr_npi: 0, source_addr: pdu.destination_addr,
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: pdu.source_addr,
    esm_class: 0, registered_delivery: 0,
    ...body,
    ussd_service_op: op,
    its_session_info: Buffer.from([info.session, (sequence << 1) | (end ? 1 : 0)]),
  }, (resp) => {
    if (resp.command_status !== 0) {
      result.errors.push('submit_sm refused: ' + resp.command_status);
      return;
    }
    if (end) {
      result.completed++;
      if (result.completed >= opts.dialogues) done();
    }
  });
}

function menu(screen) {
  return gsm('Node menu ' + screen + '/' + opts.depth + '\n1. Yes\n2. No');
}

function text(sm) {
  const value = sm && sm.message !== undefined ? sm.message : sm;
  return Buffer.isBuffer(value) ? value.toString('latin1') : String(value === undefined ? '' : value);
}

session.on('deliver_sm', (pdu) => {
  session.send(pdu.response());
  result.deliver_sm++;
  const raw = pdu.its_session_info;
  if (!Buffer.isBuffer(raw) || raw.length !== 2) {
    result.errors.push('deliver_sm without its_session_info');
    return;
  }
  const info = { session: raw[0], sequence: raw[1] >> 1, end: (raw[1] & 1) === 1 };
  const op = pdu.ussd_service_op;
  const body = text(pdu.short_message);
  if (!opts.quiet) {
    process.stdout.write(JSON.stringify({
      event: 'deliver_sm', service_type: pdu.service_type, source_addr: pdu.source_addr,
      destination_addr: pdu.destination_addr, data_coding: pdu.data_coding, text: body,
      ussd_service_op: op === undefined ? null : op, its_session_info: Array.from(raw), ...info,
    }) + '\n');
  }
  const key = pdu.source_addr + '/' + info.session;
  if (op === 0x01) {
    const oneShot = /^\*123\*(\d+)#$/.exec(body);
    if (oneShot) {
      answer(pdu, info, 0x11, ucs2('Спасибо! ' + oneShot[1] + 'MB'));
      return;
    }
    dialogues.set(key, { screen: 1, choices: [] });
    answer(pdu, info, opts.depth === 1 ? 0x11 : 0x02, opts.depth === 1 ? gsm('Node: ' + body) : menu(1));
  } else if (op === 0x12 && !info.end && dialogues.has(key)) {
    const d = dialogues.get(key);
    d.choices.push(body);
    d.screen++;
    if (d.screen >= opts.depth) {
      dialogues.delete(key);
      answer(pdu, info, 0x11, gsm('Node: you chose ' + d.choices.join('>')));
    } else {
      answer(pdu, info, 0x02, menu(d.screen));
    }
  } else if (dialogues.delete(key)) {
    result.released++; // an end bit or a release from the network
  } else {
    result.errors.push('unexpected USSD op ' + op + ' for ' + key);
  }
});

function done() {
  clearTimeout(timer);
  result.elapsed_s = Number(((performance.now() - t0) / 1000).toFixed(4));
  const guard = setTimeout(() => finish(1, 'no unbind_resp'), 2000);
  session.unbind(() => {
    clearTimeout(guard);
    session.close();
    finish(result.errors.length ? 1 : 0);
  });
}

session.on('error', (e) => finish(1, String(e.message || e)));
session.on('close', () => finish(1, 'connection closed by peer'));
session.on('enquire_link', (pdu) => session.send(pdu.response()));
session.on('unbind', (pdu) => session.send(pdu.response(), () => finish(1, 'unbound by peer')));

session.on('connect', () => {
  session.socket.setNoDelay(true);
  session.bind_transceiver({ system_id: opts.systemId, password: opts.password }, (pdu) => {
    if (pdu.command_status !== 0) {
      clearTimeout(timer);
      finish(2, 'bind refused: ' + pdu.command_status);
      return;
    }
    t0 = performance.now();
    process.stdout.write(JSON.stringify({ event: 'bound' }) + '\n');
  });
});
