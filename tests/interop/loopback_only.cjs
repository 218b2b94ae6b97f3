// Preloaded (`node --require`) into a Node MCP server that binds every
// interface, so that in tests and benches it listens on loopback only.
const net = require('node:net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (['number', 'string'].includes(typeof args[0]) && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1');
  }
  return listen.apply(this, args);
};
