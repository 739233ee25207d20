'use strict';
// Independent SMSC peer built on node `smpp` (farhadi) 0.5.1, for interop tests and benchmarks.
//
//   node smsc.js PORT [--dlr] [--mo N] [--host H]
//
// PORT 0 picks a free port; the real one is announced as `READY <port>` on stdout once listening.
// SIGTERM/SIGINT print `STATS submits=.. receipts_sent=.. receipt_resps=.. binds=.. enquire_links=..`
// (followed by extra key=value fields) and exit 0.
const smpp = require('smpp');

function parseArgs(argv) {
  const o = { port: null, host: '127.0.0.1', dlr: false, mo: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--dlr') o.dlr = true;
    else if (a === '--mo') o.mo = parseInt(argv[++i], 10);
    else if (a === '--host') o.host = argv[++i];
    else if (o.port === null && /^\d+$/.test(a)) o.port = parseInt(a, 10);
    else throw new Error('unexpected argument: ' + a);
  }
  if (o.port === null || !(o.mo >= 0)) throw new Error('usage: node smsc.js PORT [--dlr] [--mo N] [--host H]');
  return o;
}

let opts;
try {
  opts = parseArgs(process.argv.slice(2));
} catch (e) {
  process.stderr.write(e.message + '\n');
  process.exit(64);
}

const stats = {
  submits: 0, receipts_sent: 0, receipt_resps: 0, binds: 0, enquire_links: 0,
  bind_rejects: 0, unbinds: 0, mo_sent: 0, mo_resps: 0,
};
let lastId = 0;
// Sessions bound as receiver, by system_id: a transmitter's receipts are routed there.
const receivers = new Map();

// SMPP 3.4 Appendix B dates are YYMMDDhhmm; UTC keeps runs reproducible across machines.
function smppDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

// The receipt is sent as data_coding 0 bytes, so keep its text: field printable ASCII.
function receiptText(sm) {
  let text = sm && sm.message !== undefined ? sm.message : sm;
  if (Buffer.isBuffer(text)) text = text.toString('latin1');
  return String(text || '').slice(0, 20).replace(/[^\x20-\x7e]/g, '?');
}

function handleSession(session) {
  // Without an error listener an ECONNRESET from a peer that just drops kills the process (#236, #251).
  session.on('error', () => {});
  // Nagle would hold a batch of receipts behind the unacknowledged submit_sm_resp until the peer's
  // delayed ACK (~40 ms): fatal for stop-and-wait tests.
  session.socket.setNoDelay(true);
  let bound = null; // 'transmitter' | 'receiver' | 'transceiver'
  let systemId = '';
  let queue = []; // encoded receipts, written in one batch per event-loop turn
  const moSeqs = new Set(); // sequence numbers of our MO deliver_sm, to tell their resps from receipts'

  function nextSeq() {
    if (session.sequence >= 0x7fffffff) session.sequence = 0;
    return ++session.sequence;
  }

  // Receipts bypass session.send() (one socket.write per PDU): a burst goes out in one write per
  // event-loop turn, so with --dlr the SMSC stays cheaper than the ESME that has to answer them all.
  session._queueRaw = (buf) => {
    if (queue.length === 0) setImmediate(flush);
    queue.push(buf);
  };
  function flush() {
    const bufs = queue;
    queue = [];
    if (bufs.length && session.socket.writable) session.socket.write(Buffer.concat(bufs));
  }
  session._nextSeq = nextSeq;

  function sendMo(n) {
    for (let i = 1; i <= n; i++) {
      const pdu = new smpp.PDU('deliver_sm', {
        source_addr: '31600000001', destination_addr: '12345', esm_class: 0,
        data_coding: 0, short_message: Buffer.from('MO ' + i, 'ascii'),
      });
      session.send(pdu);
      moSeqs.add(pdu.sequence_number);
      stats.mo_sent++;
    }
  }

  for (const kind of ['transmitter', 'receiver', 'transceiver']) {
    session.on('bind_' + kind, (pdu) => {
      if (bound) {
        session.send(pdu.response({ command_status: smpp.ESME_RALYBND }));
        return;
      }
      if (pdu.password === 'wrong') {
        stats.bind_rejects++;
        session.send(pdu.response({ command_status: smpp.ESME_RINVPASWD }));
        return;
      }
      stats.binds++;
      bound = kind;
      systemId = pdu.system_id;
      if (kind === 'receiver') receivers.set(systemId, session);
      session.send(pdu.response({ system_id: 'nodesmsc' }));
      if (opts.mo > 0 && kind !== 'transmitter') sendMo(opts.mo);
    });
  }

  session.on('submit_sm', (pdu) => {
    if (bound !== 'transmitter' && bound !== 'transceiver') {
      session.send(pdu.response({ command_status: smpp.ESME_RINVBNDSTS }));
      return;
    }
    stats.submits++;
    const id = (++lastId).toString(16);
    const submitted = new Date();
    session.send(pdu.response({ message_id: id }));
    if (!opts.dlr || !(pdu.registered_delivery & 1)) return;
    const target = bound === 'transceiver' ? session : receivers.get(systemId);
    if (!target || target.socket.destroyed) return;
    const now = new Date();
    const text = 'id:' + id + ' sub:001 dlvrd:001 submit date:' + smppDate(submitted) +
      ' done date:' + smppDate(now) + ' stat:DELIVRD err:000 text:' + receiptText(pdu.short_message);
    const receipt = new smpp.PDU('deliver_sm', {
      // A receipt goes back from the handset: the original destination becomes the source.
      source_addr_ton: pdu.dest_addr_ton, source_addr_npi: pdu.dest_addr_npi, source_addr: pdu.destination_addr,
      dest_addr_ton: pdu.source_addr_ton, dest_addr_npi: pdu.source_addr_npi, destination_addr: pdu.source_addr,
      esm_class: smpp.ESM_CLASS.MC_DELIVERY_RECEIPT, data_coding: 0,
      short_message: Buffer.from(text, 'ascii'),
      receipted_message_id: id, message_state: smpp.MESSAGE_STATE.DELIVERED,
    });
    receipt.sequence_number = target._nextSeq();
    target._queueRaw(receipt.toBuffer());
    stats.receipts_sent++;
  });

  session.on('deliver_sm_resp', (pdu) => {
    if (moSeqs.delete(pdu.sequence_number)) stats.mo_resps++;
    else stats.receipt_resps++;
  });

  session.on('enquire_link', (pdu) => {
    stats.enquire_links++;
    session.send(pdu.response());
  });

  session.on('unbind', (pdu) => {
    stats.unbinds++;
    flush(); // receipts already queued go out before the unbind_resp
    session.send(pdu.response(), () => session.close());
  });

  // node smpp answers nothing by itself: anything else gets a proper negative response, not silence.
  const handled = new Set([
    'bind_transmitter', 'bind_receiver', 'bind_transceiver', 'submit_sm', 'enquire_link', 'unbind',
  ]);
  session.on('pdu', (pdu) => {
    if (pdu.isResponse() || handled.has(pdu.command)) return;
    session.send(pdu.response({ command_status: smpp.ESME_RINVCMDID }));
  });

  session.on('close', () => {
    if (bound === 'receiver' && receivers.get(systemId) === session) receivers.delete(systemId);
    queue = [];
  });
}

const server = smpp.createServer(handleSession);
server.on('error', (e) => {
  process.stderr.write('smsc: ' + e.message + '\n');
  process.exit(1);
});
server.listen(opts.port, opts.host, () => {
  process.stdout.write('READY ' + server.address().port + '\n');
});

function stop() {
  const fields = Object.entries(stats).map(([k, v]) => k + '=' + v).join(' ');
  process.stdout.write('STATS ' + fields + '\n', () => process.exit(0));
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
