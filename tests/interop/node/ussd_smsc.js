'use strict';
// An independent USSD centre built on node `smpp` (farhadi) 0.5.1: it plays the operator's side of one
// USSD dialogue over SMPP 3.4 (ussd_service_op 5.3.2.44, its_session_info 5.3.2.43) with the ESME that
// binds, for interop tests of our USSD gateway.
//
//   node ussd_smsc.js PORT [--msisdn M] [--code *123#] [--session N] [--replies 1,1,2,1] [--host H]
//
// PORT 0 picks a free port; `READY <port>` is printed once listening. After a bind (transceiver or
// receiver) it sends a PSSR indication deliver_sm (service_type USSD, ussd_service_op 1,
// its_session_info session N / sequence 0, short_message the dialled code, data_coding 0, a Buffer so
// node smpp does not re-encode it). Every submit_sm of the ESME is answered and printed; a USSR request
// (op 2) without the end bit is answered with a USSR confirm deliver_sm (op 0x12) carrying the next
// reply and the next sequence number; a PSSR response (op 0x11) or an end bit ends the dialogue.
//
// Output: one JSON object per line, `event` = bind | deliver_sm | deliver_sm_resp | submit_sm | done |
// error | unbind. After the ESME's unbind the script answers, prints `unbind` and exits 0; SIGTERM
// exits 0 too.
const smpp = require('smpp');

function parseArgs(argv) {
  const o = { port: null, host: '127.0.0.1', msisdn: '254700000042', code: '*123#', session: 42, replies: ['1', '1', '2', '1'] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--msisdn') o.msisdn = argv[++i];
    else if (a === '--code') o.code = argv[++i];
    else if (a === '--session') o.session = parseInt(argv[++i], 10);
    else if (a === '--replies') o.replies = argv[++i].split(',').filter((r) => r.length > 0);
    else if (a === '--host') o.host = argv[++i];
    else if (o.port === null && /^\d+$/.test(a)) o.port = parseInt(a, 10);
    else throw new Error('unexpected argument: ' + a);
  }
  if (o.port === null || !(o.session >= 0 && o.session <= 255)) {
    throw new Error('usage: node ussd_smsc.js PORT [--msisdn M] [--code C] [--session 0..255] [--replies a,b,..]');
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

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// The service code's digits are the short code the dialogue runs on: *123*500# -> 123.
const shortCode = (/^[*#]+(\d+)/.exec(opts.code) || [null, ''])[1];

function handleSession(session) {
  session.on('error', (e) => emit({ event: 'error', reason: String(e.message || e) }));
  session.socket.setNoDelay(true);
  let bound = false;
  let replies = opts.replies.slice();
  let lastSequence = 0;

  // node smpp decodes short_message by data_coding into { message: string }; keep what came as text.
  function text(sm) {
    const value = sm && sm.message !== undefined ? sm.message : sm;
    return Buffer.isBuffer(value) ? value.toString('latin1') : String(value === undefined ? '' : value);
  }

  function deliver(op, sequence, body, fields) {
    const pdu = new smpp.PDU('deliver_sm', {
      service_type: 'USSD',
      source_addr_ton: 1, source_addr_npi: 1, source_addr: opts.msisdn,
      dest_addr_ton: 0, dest_addr_npi: 0, destination_addr: fields.destination_addr,
      esm_class: 0, data_coding: 0,
      short_message: Buffer.from(body, 'ascii'), // a Buffer: node smpp would relabel a string IA5
      ussd_service_op: op,
      its_session_info: Buffer.from([opts.session, (sequence & 0x7f) << 1]),
    });
    session.send(pdu, (resp) => emit({
      event: 'deliver_sm_resp', sequence_number: resp.sequence_number, command_status: resp.command_status,
    }));
    emit({ event: 'deliver_sm', sequence_number: pdu.sequence_number, ussd_service_op: op, session: opts.session, sequence, text: body });
  }

  for (const kind of ['transmitter', 'receiver', 'transceiver']) {
    session.on('bind_' + kind, (pdu) => {
      if (bound) {
        session.send(pdu.response({ command_status: smpp.ESME_RALYBND }));
        return;
      }
      bound = true;
      session.send(pdu.response({ system_id: 'nodeussd' }));
      emit({ event: 'bind', command: 'bind_' + kind, system_id: pdu.system_id });
      if (kind !== 'transmitter') deliver(0x01, 0, opts.code, { destination_addr: shortCode });
    });
  }

  let ids = 0;
  session.on('submit_sm', (pdu) => {
    session.send(pdu.response({ message_id: 'u' + (++ids).toString(16) }));
    const info = pdu.its_session_info;
    const fields = {
      event: 'submit_sm',
      sequence_number: pdu.sequence_number,
      service_type: pdu.service_type,
      source_addr_ton: pdu.source_addr_ton, source_addr_npi: pdu.source_addr_npi, source_addr: pdu.source_addr,
      dest_addr_ton: pdu.dest_addr_ton, dest_addr_npi: pdu.dest_addr_npi, destination_addr: pdu.destination_addr,
      esm_class: pdu.esm_class, registered_delivery: pdu.registered_delivery, data_coding: pdu.data_coding,
      text: text(pdu.short_message),
      ussd_service_op: pdu.ussd_service_op === undefined ? null : pdu.ussd_service_op,
      its_session_info: Buffer.isBuffer(info) ? Array.from(info) : null,
    };
    if (Buffer.isBuffer(info) && info.length === 2) {
      fields.session = info[0];
      fields.sequence = info[1] >> 1;
      fields.end = (info[1] & 1) === 1;
    }
    emit(fields);
    if (fields.ussd_service_op === 0x02 && !fields.end) {
      if (fields.session !== opts.session || !(fields.sequence > lastSequence)) {
        emit({ event: 'error', reason: 'USSR request for session ' + fields.session + ' seq ' + fields.sequence });
        return;
      }
      if (replies.length === 0) {
        emit({ event: 'error', reason: 'no reply left for: ' + fields.text });
        return;
      }
      lastSequence = fields.sequence + 1;
      deliver(0x12, lastSequence, replies.shift(), { destination_addr: pdu.source_addr });
    } else if (fields.ussd_service_op === 0x11 || fields.end) {
      emit({ event: 'done', replies_left: replies.length });
    }
  });

  session.on('enquire_link', (pdu) => session.send(pdu.response()));

  session.on('unbind', (pdu) => {
    session.send(pdu.response(), () => {
      emit({ event: 'unbind' });
      session.close();
      process.stdout.write('', () => process.exit(0));
    });
  });

  // node smpp answers nothing by itself: anything else gets a proper negative response, not silence.
  const handled = new Set(['bind_transmitter', 'bind_receiver', 'bind_transceiver', 'submit_sm', 'enquire_link', 'unbind']);
  session.on('pdu', (pdu) => {
    if (pdu.isResponse() || handled.has(pdu.command)) return;
    session.send(pdu.response({ command_status: smpp.ESME_RINVCMDID }));
  });
}

const server = smpp.createServer(handleSession);
server.on('error', (e) => {
  process.stderr.write('ussd_smsc: ' + e.message + '\n');
  process.exit(1);
});
server.listen(opts.port, opts.host, () => {
  process.stdout.write('READY ' + server.address().port + '\n');
});
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));
