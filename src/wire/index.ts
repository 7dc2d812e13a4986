/**
 * The wire layer: views, reprs, parsers and emitters for every header the
 * stack handles. A leaf: nothing here imports a protocol folder or `node:*`.
 */
export * from './errors.js';
export * from './checksum.js';
export * from './ethernet.js';
export * from './ipv4-address.js';
export * from './arp.js';
export * from './ipv4.js';
export * from './icmpv4.js';
export * from './udp.js';
export * from './tcp.js';
export * from './virtio-net.js';
