'use strict';
// Independent ESME peer built on node `smpp` (farhadi) 0.5.1, for interop tests and benchmarks.
//
//   node esme.js --port P --system-id X --password Y [--host H] [--count N] [--window W]
//                [--bind transceiver|transmitter|receiver] [--text T] [--dlr] [--ucs2] [--long]
//                [--expect-mo N] [--expect-receipts N] [--src A] [--dst A] [--timeout S]
//
// Prints one JSON line at the end. Exit 0: everything answered; 1: error or timeout; 2: bind refused.
// With --long each of the N messages is 3 concatenated submit_sm, so "submitted" counts PDUs (3N).
const smpp = require('smpp');

function parseArgs(argv) {
  const o = {
    host: '127.0.0.1', port: null, systemId: '', password: '', count: 1, window: 1, bind: 'transceiver',
    text: 'hello from node esme', dlr: false, ucs2: false, long: false, expectMo: 0, expectReceipts: 0,
    src: '12345', dst: '31600000001', timeout: 60,
  };
  const take = { '--host': 'host', '--system-id': 'systemId', '--password': 'password', '--bind': 'bind',
    '--text': 'text', '--src': 'src', '--dst': 'dst' };
  const num = { '--port': 'port', '--count': 'count', '--window': 'window', '--expect-mo': 'expectMo',
    '--expect-receipts': 'expectReceipts', '--timeout': 'timeout' };
  const flag = { '--dlr': 'dlr', '--ucs2': 'ucs2', '--long': 'long' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a in take && i + 1 < argv.length) o[take[a]] = argv[++i];
    else if (a in num && i + 1 < argv.length) o[num[a]] = Number(argv[++i]);
    else if (a in flag) o[flag[a]] = true;
    else throw new Error('unexpected argument: ' + a);
  }
  if (!(o.port > 0) || !(o.count >= 0) || !(o.window >= 1) ||
      !['transceiver', 'transmitter', 'receiver'].includes(o.bind)) {
    throw new Error('usage: node esme.js --port P --system-id X --password Y [--count N] [--window W] ...');
  }
  if (o.bind === 'receiver') o.count = 0;
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(e.message + '\n');
  process.exit(64);
}

// Buffers, not strings: node smpp labels GSM-alphabet strings data_coding 1 (IA5) instead of 0.
function encode(text) {
  return opts.ucs2 ? Buffer.from(text, 'utf16le').swap16() : smpp.gsmCoder.encode(text, 0);
}

// Splits into 3 segments without cutting a GSM escape pair or a UTF-16 surrogate pair.
function splitInThree(body) {
  const limit = opts.ucs2 ? 134 : 153; // 140 octets minus the 6-octet concatenation UDH (UCS-2: even)
  const parts = [];
  let off = 0;
  while (off < body.length) {
    let end = Math.min(off + limit, body.length);
    if (end < body.length) {
      if (!opts.ucs2 && body[end - 1] === 0x1b) end -= 1;
      if (opts.ucs2 && (body.readUInt16BE(end - 2) & 0xfc00) === 0xd800) end -= 2;
    }
    parts.push(body.subarray(off, end));
    off = end;
  }
  return parts;
}

// One message = a list of submit_sm option objects (1 part, or 3 with a concatenation UDH).
function buildMessage(index) {
  const base = {
    source_addr_ton: 0, source_addr_npi: 0, source_addr: opts.src,
    dest_addr_ton: 1, dest_addr_npi: 1, destination_addr: opts.dst,
    data_coding: opts.ucs2 ? 8 : 0, registered_delivery: opts.dlr ? 1 : 0, esm_class: 0,
  };
  if (!opts.long) return [{ ...base, short_message: encode(opts.text) }];
  // Pad the text so it needs exactly three parts.
  const perPart = opts.ucs2 ? 67 : 153;
  let text = opts.text;
  while (text.length < perPart * 2 + 10) text += ' ' + opts.text;
  const parts = splitInThree(encode(text.slice(0, perPart * 2 + perPart / 2)));
  const ref = index & 0xff;
  return parts.map((p, i) => ({
    ...base, esm_class: 0x40,
    short_message: Buffer.concat([Buffer.from([0x05, 0x00, 0x03, ref, parts.length, i + 1]), p]),
  }));
}

const result = {
  bind_status: null, submitted: 0, ok: 0, errors: {}, receipts: 0, receipts_matched: 0,
  receipt_sample: null, mo: [], elapsed_s: 0, rate: 0,
};
const messageIds = new Set();
const receiptIds = [];
let inflight = 0;
let answered = 0;
let messagesQueued = 0;
let pendingParts = [];
let t0 = 0;
let finished = false;
const session = smpp.connect({ host: opts.host, port: opts.port });

function elapsed() {
  return t0 ? (performance.now() - t0) / 1000 : 0;
}

function finish(code, extra) {
  if (finished) return;
  finished = true;
  Object.assign(result, extra || {});
  if (!result.elapsed_s) result.elapsed_s = Number(elapsed().toFixed(4));
  result.rate = result.elapsed_s > 0 ? Math.round(result.submitted / result.elapsed_s) : 0;
  for (const id of receiptIds) if (messageIds.has(id)) result.receipts_matched++;
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(code));
}

const timer = setTimeout(() => {
  // Unbind politely so the SMSC sees a clean end even on timeout.
  session.unbind();
  finish(1, { error: 'timeout' });
}, opts.timeout * 1000);

function totalPdus() {
  return opts.long ? opts.count * 3 : opts.count;
}

// A transmitter bind cannot receive deliver_sm, so --dlr there only sets registered_delivery; a
// receiver bind (getting a transmitter's receipts) waits for them with --expect-receipts.
function done() {
  const own = opts.dlr && opts.bind !== 'transmitter' ? totalPdus() : 0;
  const receipts = Math.max(opts.expectReceipts, own);
  return answered >= totalPdus() && result.receipts >= receipts && result.mo.length >= opts.expectMo;
}

let unbinding = false;
function maybeUnbind() {
  if (unbinding || finished || !done()) return;
  unbinding = true;
  clearTimeout(timer);
  // The rate covers bind_resp .. last answer (and last receipt with --dlr), not the unbind.
  result.elapsed_s = Number(elapsed().toFixed(4));
  // Don't hang on an SMSC that never answers unbind, but report it.
  const timeout = setTimeout(() => finish(1, { error: 'no unbind_resp' }), 2000);
  session.unbind(() => {
    clearTimeout(timeout);
    session.close();
    finish(0);
  });
}

// Keeps at most `window` submit_sm unanswered: node smpp has no window of its own.
function pump() {
  while (inflight < opts.window) {
    if (pendingParts.length === 0) {
      if (messagesQueued >= opts.count) break;
      pendingParts = buildMessage(messagesQueued++);
    }
    const options = pendingParts.shift();
    inflight++;
    result.submitted++;
    session.submit_sm(options, onSubmitResp);
  }
}

function onSubmitResp(pdu) {
  inflight--;
  answered++;
  if (pdu.command_status === 0) {
    result.ok++;
    if (opts.dlr) messageIds.add(pdu.message_id);
  } else {
    const k = String(pdu.command_status);
    result.errors[k] = (result.errors[k] || 0) + 1;
  }
  pump();
  maybeUnbind();
}

session.on('error', (e) => finish(1, { error: String(e.message || e) }));
// Strict on purpose: an SMSC that drops the line instead of sending unbind_resp breaks SMPP 3.4 4.2.2.
session.on('close', () => finish(1, { error: unbinding ? 'closed before unbind_resp' : 'connection closed by peer' }));

session.on('connect', () => {
  // Without it, a deliver_sm_resp written behind an unacknowledged submit_sm waits ~40 ms for an ACK.
  session.socket.setNoDelay(true);
  session['bind_' + opts.bind]({ system_id: opts.systemId, password: opts.password }, (pdu) => {
    result.bind_status = pdu.command_status;
    if (pdu.command_status !== 0) {
      clearTimeout(timer);
      session.destroy();
      finish(2);
      return;
    }
    t0 = performance.now();
    pump();
    maybeUnbind();
  });
});

session.on('deliver_sm', (pdu) => {
  session.send(pdu.response());
  const sm = pdu.short_message;
  const text = sm && sm.message !== undefined ? sm.message : sm;
  const str = Buffer.isBuffer(text) ? text.toString('latin1') : String(text || '');
  if ((pdu.esm_class & 0x3c) === 0x04) {
    result.receipts++;
    if (result.receipt_sample === null) result.receipt_sample = str;
    const m = /id:(\S+)/.exec(str);
    receiptIds.push(pdu.receipted_message_id || (m && m[1]));
  } else {
    result.mo.push(str);
  }
  maybeUnbind();
});

session.on('enquire_link', (pdu) => session.send(pdu.response()));

session.on('unbind', (pdu) => {
  const ok = done();
  session.send(pdu.response(), () => {
    session.close();
    finish(ok ? 0 : 1, ok ? {} : { error: 'unbound by peer' });
  });
});
