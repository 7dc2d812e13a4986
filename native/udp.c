/*
 * udp.c: the UDP relay's host sockets (src/nat/native-udp.ts), driven
 * directly on raw non-blocking fds instead of through Node's dgram.
 *
 * Why: a 1-byte UDP request/response through dgram costs, per datagram, an
 * rinfo object and an address string (inet_ntop) on receive, a DNS lookup
 * call, a process.nextTick and a SendWrap on send, and a MakeCallback per
 * message. Here a send is one sendto from the caller's view (the kernel
 * copies the bytes, so no JS copy is needed), and a wake-up is one recvmmsg
 * into fixed slots of a caller-owned buffer, with numeric addresses in a
 * caller-owned Uint32Array: nothing allocated per datagram.
 *
 *   udpOpen       socket(AF_INET, SOCK_DGRAM | NONBLOCK | CLOEXEC), bind to
 *                 (local, port 0), IP_RECVERR on
 *   udpLocalPort  getsockname
 *   udpSend       sendto, synchronous; EAGAIN/ENOBUFS are the caller's errors
 *   udpRecvBatch  recvmmsg into slots
 *   udpClose      close (stop the fd's poll first)
 *
 * IP_RECVERR: the sockets stay unconnected (endpoint-independent mapping and
 * filtering), and Linux tells an unconnected UDP socket about ICMP errors
 * only with IP_RECVERR, through its error queue (udp-err.c udpReadErrors).
 * Each error also sets sk_err, which fails the next sendto or receive with
 * that errno, and a non-empty queue makes poll report POLLERR until it is
 * drained. native-udp.ts explains how it handles both.
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

/* The largest UDP payload over IPv4 is 65535 - 20 - 8 = 65507 bytes: a slot
 * of 64 KB never truncates. */
#define UDP_MIN_SLOT_BYTES 65536

/* Datagrams per recvmmsg call at most (its vectors live on the stack). */
#define UDP_MAX_BATCH 64

/* u32 per datagram in udpRecvBatch's meta: [src, srcPort, len, flags]. */
#define UDP_META_STRIDE 4

/* meta flags: the datagram was cut to the slot (MSG_TRUNC); drop it. */
#define UDP_META_TRUNCATED 1u

/* udpOpen(localAddr) -> fd, or -errno. localAddr is an IPv4 address in host
 * byte order; 0 (or no argument) binds to INADDR_ANY. The port is the
 * kernel's choice (ephemeral). */
static napi_value js_udp_open(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint32_t local = 0;
  if (!arg_opt_ipv4(env, argv, argc, 0, "localAddr", &local)) return NULL;
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return make_int(env, -errno);
  int one = 1;
  int e = setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one) < 0 ? errno : bind_ipv4(fd, local);
  if (e != 0) {
    close(fd);
    return make_int(env, -e);
  }
  return make_int(env, fd);
}

/* udpLocalPort(fd) -> the bound port (host order), or -errno: js_sock_local_port (addon.c). */

/* udpSend(fd, dst, dstPort, buf, off, len) -> 0, or the errno (positive) of
 * a refused sendto. dst in host byte order. Not retried on EAGAIN/ENOBUFS: a
 * full send buffer drops the datagram, as a congested router would. */
static napi_value js_udp_send(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t dst, port, off, len;
  uint8_t *buf;
  size_t buf_len;
  if (argc < 6 || !arg_int32(env, argv[0], "fd", &fd) || !arg_uint32(env, argv[1], "dst", &dst) ||
      !arg_uint32(env, argv[2], "dstPort", &port) || !arg_bytes(env, argv[3], "buf", &buf, &buf_len) ||
      !arg_uint32(env, argv[4], "off", &off) || !arg_uint32(env, argv[5], "len", &len))
    return NULL;
  if (port > 0xffff) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "udpSend: dstPort must be <= 65535");
    return NULL;
  }
  if ((size_t)off > buf_len || (size_t)len > buf_len - off) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "udpSend: range outside the buffer");
    return NULL;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr.s_addr = htonl(dst);
  ssize_t r;
  do {
    r = sendto(fd, len != 0 ? buf + off : buf, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&sa, sizeof sa);
  } while (r < 0 && errno == EINTR);
  return make_int(env, r < 0 ? errno : 0);
}

/* udpRecvBatch(fd, buf, meta, maxSlots, slotSize) -> datagrams received
 * (>= 0), or -errno when nothing was received and the receive failed with
 * something other than EAGAIN (an ICMP error's errno when sk_err was set).
 * Datagram i is at buf[i * slotSize], and meta[4i .. 4i+3] is [source IPv4
 * (host order), source port, length, flags]; flags & 1: truncated (cannot
 * happen with slotSize >= 65536; the caller drops and counts it).
 * slotSize >= 65536 and a multiple of 64. One recvmmsg: at most 64 datagrams
 * per call. */
static napi_value js_udp_recv_batch(napi_env env, napi_callback_info info) {
  batch_args a;
  if (!arg_batch(env, info, "udpRecvBatch", UDP_MIN_SLOT_BYTES, UDP_META_STRIDE, &a)) return NULL;
  size_t limit = a.limit < UDP_MAX_BATCH ? a.limit : UDP_MAX_BATCH;
  if (limit == 0) return make_int(env, 0);

  struct mmsghdr msgs[UDP_MAX_BATCH];
  struct iovec iovs[UDP_MAX_BATCH];
  struct sockaddr_in names[UDP_MAX_BATCH];
  memset(msgs, 0, limit * sizeof msgs[0]);
  for (size_t i = 0; i < limit; i++) {
    iovs[i].iov_base = a.buf + i * (size_t)a.slot;
    iovs[i].iov_len = a.slot;
    names[i].sin_family = AF_UNSPEC;
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
    bool named = h->msg_namelen >= sizeof names[i] && names[i].sin_family == AF_INET;
    uint32_t *m = a.meta + (size_t)i * UDP_META_STRIDE;
    m[0] = named ? ntohl(names[i].sin_addr.s_addr) : 0;
    m[1] = named ? ntohs(names[i].sin_port) : 0;
    m[2] = msgs[i].msg_len;
    m[3] = (h->msg_flags & MSG_TRUNC) != 0 ? UDP_META_TRUNCATED : 0;
  }
  return make_int(env, r);
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
  if ((s = export_function(env, exports, "udpLocalPort", js_sock_local_port)) != napi_ok) return s;
  if ((s = export_function(env, exports, "udpSend", js_udp_send)) != napi_ok) return s;
  if ((s = export_function(env, exports, "udpRecvBatch", js_udp_recv_batch)) != napi_ok) return s;
  return export_function(env, exports, "udpClose", js_udp_close);
}
