'use strict';
// Socket.IO 4.8 server under test: WebSocket transport only, defaults otherwise
// (pingInterval 25 s, pingTimeout 20 s, no per-message deflate, in-memory adapter).
// `join` puts the socket in a room (acked); `pub` re-broadcasts the payload to the room
// with io.to(room).emit, the same rooms broadcast tether does for SEND.
const http = require('node:http');
const { Server } = require('socket.io');

const [host, portStr] = (process.argv[2] || '127.0.0.1:0').split(':');
const httpServer = http.createServer();
const io = new Server(httpServer, { transports: ['websocket'] });

io.on('connection', (socket) => {
  socket.on('join', (room, ack) => {
    socket.join(room);
    if (typeof ack === 'function') ack(true);
  });
  socket.on('pub', (room, payload) => {
    io.to(room).emit('msg', payload);
  });
});

httpServer.listen(Number(portStr), host, () => {
  const a = httpServer.address();
  console.log(`listening http ${a.address}:${a.port}`);
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => process.exit(0));
}
