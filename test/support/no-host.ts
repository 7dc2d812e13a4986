import type { HostNetwork } from '../../src/index.js';

/** For tests that never need the host: any attempt to open a host socket is a bug (and could leave the machine). */
export const noHost: HostNetwork = {
  connectTcp: () => {
    throw new Error('test opened a host TCP socket');
  },
  createUdpSocket: () => {
    throw new Error('test opened a host UDP socket');
  },
  openPingSocket: () => 'host sockets are disabled in this test',
  createUdp6Socket: () => {
    throw new Error('test opened a host UDP6 socket');
  },
  openPing6Socket: () => 'host sockets are disabled in this test',
  listenTcp: () => Promise.reject(new Error('test opened a host listener')),
  bindUdp: () => Promise.reject(new Error('test bound a host UDP port')),
  resolverUdpSocket: () => {
    throw new Error('test opened a socket to a DNS resolver');
  },
  resolverTcpConnect: () => {
    throw new Error('test opened a connection to a DNS resolver');
  },
};
