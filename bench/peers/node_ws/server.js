'use strict';
// A chat on Node's `ws` (8.x): a Set of clients per room, JSON relayed to all.
//
//   node bench/peers/node_ws/server.js --port 8004
//
// GET /ws?name=..&room=.. upgrades, joins the room and gets `welcome`; every
// `message` is stringified once and sent to each open client of the room.

const http = require('http');
const crypto = require('crypto');
const { WebSocketServer, WebSocket } = require('ws');

const COLORS = ['#c0392b', '#2980b9', '#27ae60', '#8e44ad', '#d35400', '#16a085'];

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 ? process.argv[at + 1] : fallback;
}

function colorFor(name) {
  let hash = 0;
  for (const byte of Buffer.from(name)) hash = (hash * 31 + byte) >>> 0;
  return COLORS[hash % COLORS.length];
}

const rooms = new Map(); // room name -> Set of sockets
const lastIds = new Map(); // room name -> last message id

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end('<!doctype html><title>chat</title><p>Connect to /ws</p>');
});
const wss = new WebSocketServer({ server, path: '/ws' });

wss.on('connection', (ws, req) => {
  const query = new URL(req.url, 'http://localhost').searchParams;
  const name = query.get('name') || 'guest';
  const room = query.get('room') || 'lobby';
  const user = { id: crypto.randomBytes(6).toString('hex'), name, color: colorFor(name) };
  if (!rooms.has(room)) rooms.set(room, new Set());
  const members = rooms.get(room);
  members.add(ws);
  ws.send(JSON.stringify({ type: 'welcome', user, rooms: [room] }));

  ws.on('message', (raw, isBinary) => {
    if (isBinary) return;
    let data;
    try {
      data = JSON.parse(raw);
    } catch {
      return;
    }
    if (data.type !== 'message') return;
    const id = (lastIds.get(room) || 0) + 1;
    lastIds.set(room, id);
    const out = JSON.stringify({
      type: 'message',
      id,
      room,
      user,
      text: data.text,
      ts: Date.now(),
      client_id: data.client_id,
    });
    for (const client of members) {
      if (client.readyState === WebSocket.OPEN) client.send(out);
    }
  });

  ws.on('close', () => {
    members.delete(ws);
  });
  ws.on('error', () => {}); // a broken client must not take the server down
});

const port = Number(option('--port', '8004'));
const host = option('--host', '127.0.0.1');
server.listen(port, host);
process.on('SIGTERM', () => process.exit(0));
