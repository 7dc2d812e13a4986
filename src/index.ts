/**
 * usernet: a userspace TCP/IP stack for rootless containers and sandboxes.
 *
 *   import { createStack, TapLink } from 'usernet';
 *   const link = TapLink.attach({ netnsPath: '/proc/1234/ns/net', tapName: 'tap0', mtu: 1500 });
 *   const stack = createStack({ link });
 */
export { createStack, MIN_MTU, MAX_MTU } from './stack.js';
export type { Stack, StackOptions, StackLimits, StackStats, StackAddresses } from './stack.js';
export type { Link, LinkStats, BatchHandler } from './link/link.js';
export { MemoryLink, createMemoryLinkPair } from './link/memory.js';
export type { MemoryLinkOptions } from './link/memory.js';
export { FaultyLink } from './link/faulty.js';
export type { LinkFaults } from './link/faulty.js';
export { TapLink } from './link/tap.js';
export { busyPoll, busyPollStats, DEFAULT_BUSY_POLL_US } from './link/busy-poll.js';
export type { BusyPollStats } from './link/busy-poll.js';
export { reclaimMemoryWhenIdle } from './memory-reclaim.js';
export type { MemoryReclaimer, MemoryReclaimOptions, MemoryReclaimStats } from './memory-reclaim.js';
export { ManualClock, SystemClock } from './clock.js';
export type { Clock } from './clock.js';
export type { TcpFlowInfo, TcpNatStats } from './nat/tcp-nat.js';
export type { UdpMappingInfo, UdpNatStats } from './nat/udp-nat.js';
export type { HostNetwork, HostUdpSocket } from './nat/host.js';
export type { PortForward } from './nat/port-forwards.js';
export { UsernetError } from './errors.js';
export type { UsernetErrorCode } from './errors.js';
export { addressPlan } from './ip/address-plan.js';
export type { AddressPlan } from './ip/address-plan.js';
