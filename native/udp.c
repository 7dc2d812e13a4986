/*
 * udp.c: the UDP relay's host sockets (src/nat/native-udp.ts), IPv4 and
 * IPv6, driven directly on raw non-blocking fds instead of through Node's
 * dgram.
 *
 * Why: a 1-byte UDP request/response through dgram costs, per datagram, an
 * rinfo object and an address string (inet_ntop) on receive, a DNS lookup
 * call, a process.nextTick and a SendWrap on send, and a MakeCallback per
 * message. Here a send is one sendto from the caller's view (the kernel
 * copies the bytes, so no JS copy is needed), and a wake-up is one recvmmsg
 * into fixed slots of a caller-owned buffer, with numeric addresses in a
 * caller-owned Uint32Array: nothing allocated per datagram.
 *
 *   udpOpen / udpOpen6      socket(AF_INET / AF_INET6, SOCK_DGRAM | NONBLOCK
 *                           | CLOEXEC), IPV6_V6ONLY=1 for AF_INET6, bind to
 *                           (local, port 0), IP_RECVERR / IPV6_RECVERR on
 *   udpLocalPort            getsockname (either family)
 *   udpSend / udpSend6      sendto, synchronous; EAGAIN/ENOBUFS are the
 *                           caller's errors
 *   udpRecvBatch / udpRecvBatch6  recvmmsg into slots
 *   udpClose                close (stop the fd's poll first)
 *
 * Each pair is one implementation taking the family; only the address
 * arguments and the meta layout differ (addon.h: IPv6 addresses go in as 16
 * bytes at an offset, come out as four words).
 *
 * IPV6_V6ONLY: an IPv6 relay socket must never reach IPv4 (a guest sending
 * to ::ffff:127.0.0.1 would otherwise talk to the host's IPv4 loopback
 * behind the IPv4 policy's back); with it, such a sendto fails (ENETUNREACH).
 *
 * IP_RECVERR / IPV6_RECVERR: the sockets stay unconnected (endpoint-
 * independent mapping and filtering), and Linux tells an unconnected UDP
 * socket about ICMP errors only with RECVERR, through its error queue
 * (udp-err.c udpReadErrors). Each error also sets sk_err, which fails the
 * next sendto or receive with that errno, and a non-empty queue makes poll
 * report POLLERR until it is drained; __udp6_lib_err does exactly what
 * __udp4_lib_err does (test/unit/udp-errors.test.ts pins both).
 * native-udp.ts explains how it handles that.
 *
 * Readiness is poll.c's uv_poll (pollStart/pollStop/pollRef), as for the TAP
 * and the ping sockets. Error convention as in addon.h: bad arguments throw,
 * I/O returns numbers.
 */
#include "addon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* The largest UDP payload over IPv4 is 65535 - 20 - 8 = 65507 bytes, over
 * IPv6 (without jumbograms) 65535 - 8 = 65527: a slot of 64 KB never
 * truncates. */
#define UDP_MIN_SLOT_BYTES 65536

/* Datagrams per recvmmsg call at most (its vectors live on the stack). */
#define UDP_MAX_BATCH 64

/* u32 per datagram in udpRecvBatch's meta: [address words (1 for IPv4, 4 for
 * IPv6), srcPort, len, flags]. */
#define UDP_META_STRIDE(family) (ADDR_WORDS(family) + 3)

/* meta flags: the datagram was cut to the slot (MSG_TRUNC); drop it. */
#define UDP_META_TRUNCATED 1u

/* udpOpen(localAddr) / udpOpen6(localAddr) -> fd, or -errno. localAddr: an
 * IPv4 address in host byte order (0 or absent: INADDR_ANY), or 16 bytes
 * (absent or null: ::). The port is the kernel's choice (ephemeral). */
static napi_value udp_open(napi_env env, napi_callback_info info, int family) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_addr local;
  if (!arg_opt_local(env, argv, argc, 0, "localAddr", family, &local)) return NULL;
  int fd = open_socket(family, SOCK_DGRAM, IPPROTO_UDP);
  if (fd < 0) return make_int(env, fd);
  int one = 1;
  int e = (family == AF_INET6 ? setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof one)
                              : setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one)) < 0
              ? errno
              : bind_addr(fd, &local);
  if (e != 0) {
    close(fd);
    return make_int(env, -e);
  }
  return make_fd_result(env, fd);
}

static napi_value js_udp_open(napi_env env, napi_callback_info info) { return udp_open(env, info, AF_INET); }
static napi_value js_udp_open6(napi_env env, napi_callback_info info) { return udp_open(env, info, AF_INET6); }

/* udpLocalPort(fd) -> the bound port (host order), or -errno: js_sock_local_port (addon.c). */

/* udpSend(fd, dst, dstPort, buf, off, len) with dst an IPv4 address in host
 * byte order, udpSend6(fd, dst, dstOff, dstPort, buf, off, len) with the
 * IPv6 destination at dst[dstOff, dstOff+16) -> 0, or the errno (positive)
 * of a refused sendto. Not retried on EAGAIN/ENOBUFS: a full send buffer
 * drops the datagram, as a congested router would. */
static napi_value udp_send(napi_env env, napi_callback_info info, int family) {
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  const size_t nargs = family == AF_INET6 ? 7 : 6;
  napi_value *rest = argv + nargs - 4; /* dstPort, buf, off, len */
  int32_t fd;
  uint32_t port, len;
  uint8_t *p;
  if (argc < nargs || !arg_int32(env, argv[0], "fd", &fd) || !arg_uint32(env, rest[0], "dstPort", &port) ||
      !arg_slice(env, rest + 1, family == AF_INET6 ? "udpSend6" : "udpSend", &p, &len))
    return NULL;
  if (port > 0xffff) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "udpSend: dstPort must be <= 65535");
    return NULL;
  }
  sock_addr dst;
  if (family == AF_INET6) {
    if (!arg_ipv6_at(env, argv[1], argv[2], "dst", (uint16_t)port, &dst)) return NULL;
  } else {
    uint32_t addr;
    if (!arg_uint32(env, argv[1], "dst", &addr)) return NULL;
    sock_addr_ipv4(&dst, addr, (uint16_t)port);
  }
  int64_t r = send_to(fd, p, len, &dst);
  return make_int(env, r < 0 ? -r : 0);
}

static napi_value js_udp_send(napi_env env, napi_callback_info info) { return udp_send(env, info, AF_INET); }
static napi_value js_udp_send6(napi_env env, napi_callback_info info) { return udp_send(env, info, AF_INET6); }

/* udpRecvBatch(fd, buf, meta, maxSlots, slotSize) -> datagrams received
 * (>= 0), or -errno when nothing was received and the receive failed with
 * something other than EAGAIN (an ICMP error's errno when sk_err was set).
 * Datagram i is at buf[i * slotSize], and meta[4i .. 4i+3] is [source IPv4
 * (host order), source port, length, flags]; for udpRecvBatch6 meta[7i ..
 * 7i+6] is [source address words 0..3, source port, length, flags]. flags &
 * 1: truncated (cannot happen with slotSize >= 65536; the caller drops and
 * counts it). slotSize >= 65536 and a multiple of 64. One recvmmsg: at most
 * 64 datagrams per call. */
static napi_value udp_recv_batch(napi_env env, napi_callback_info info, int family) {
  const size_t stride = UDP_META_STRIDE(family);
  const size_t aw = ADDR_WORDS(family);
  batch_args a;
  if (!arg_batch(env, info, family == AF_INET6 ? "udpRecvBatch6" : "udpRecvBatch", UDP_MIN_SLOT_BYTES, stride, &a))
    return NULL;
  size_t limit = a.limit < UDP_MAX_BATCH ? a.limit : UDP_MAX_BATCH;
  if (limit == 0) return make_int(env, 0);

  struct mmsghdr msgs[UDP_MAX_BATCH];
  struct iovec iovs[UDP_MAX_BATCH];
  struct sockaddr_in6 names[UDP_MAX_BATCH]; /* room for either family */
  memset(msgs, 0, limit * sizeof msgs[0]);
  for (size_t i = 0; i < limit; i++) {
    iovs[i].iov_base = a.buf + i * (size_t)a.slot;
    iovs[i].iov_len = a.slot;
    msgs[i].msg_hdr.msg_name = &names[i];
    msgs[i].msg_hdr.msg_namelen = sizeof names[i];
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  int r;
  do {
    r = recvmmsg(a.fd, msgs, (unsigned int)limit, MSG_DONTWAIT, NULL);
  } while (r < 0 && errno == EINTR);
  if (r < 0) return make_int(env, errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno);
  for (int i = 0; i < r; i++) {
    const struct msghdr *h = &msgs[i].msg_hdr;
    uint32_t *m = a.meta + (size_t)i * stride;
    m[aw] = put_addr_words(m, &names[i], h->msg_namelen, family);
    m[aw + 1] = msgs[i].msg_len;
    m[aw + 2] = (h->msg_flags & MSG_TRUNC) != 0 ? UDP_META_TRUNCATED : 0;
  }
  return make_int(env, r);
}

static napi_value js_udp_recv_batch(napi_env env, napi_callback_info info) {
  return udp_recv_batch(env, info, AF_INET);
}
static napi_value js_udp_recv_batch6(napi_env env, napi_callback_info info) {
  return udp_recv_batch(env, info, AF_INET6);
}

/* udpClose(fd) -> 0 or -errno. Stop the fd's poll first (pollStop). */
static napi_value js_udp_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  /* Never retried on EINTR: Linux has released the fd either way. */
  return make_int(env, close(fd) < 0 ? -errno : 0);
}

napi_status udp_register(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = export_function(env, exports, "udpOpen", js_udp_open)) != napi_ok) return s;
  if ((s = export_function(env, exports, "udpOpen6", js_udp_open6)) != napi_ok) return s;
  if ((s = export_function(env, exports, "udpLocalPort", js_sock_local_port)) != napi_ok) return s;
  if ((s = export_function(env, exports, "udpSend", js_udp_send)) != napi_ok) return s;
  if ((s = export_function(env, exports, "udpSend6", js_udp_send6)) != napi_ok) return s;
  if ((s = export_function(env, exports, "udpRecvBatch", js_udp_recv_batch)) != napi_ok) return s;
  if ((s = export_function(env, exports, "udpRecvBatch6", js_udp_recv_batch6)) != napi_ok) return s;
  return export_function(env, exports, "udpClose", js_udp_close);
}
