/*
 * udp-err.c: ICMP and ICMPv6 errors for the UDP relay's unconnected host
 * sockets (issue 4: port unreachable to the guest when the host refuses a
 * datagram).
 *
 * The relay's sockets (udp.c) stay unconnected (endpoint-independent mapping
 * and filtering, udp-nat.ts), and Linux tells an unconnected UDP socket about
 * ICMP errors only when IP_RECVERR / IPV6_RECVERR is on (udpOpen and
 * udpOpen6 set it); then __udp4_lib_err and __udp6_lib_err alike both queue
 * a struct sock_extended_err on the socket's error queue and set sk_err.
 * What that does to sends, receives and poll, and why the queue must be
 * drained, is in src/nat/native-udp.ts. This file only has the drain:
 *
 *   udpReadErrors / udpReadErrors6   recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT)
 *                                    until EAGAIN
 *
 * Draining the queue also clears sk_err: dequeuing an entry sets sk_err to
 * the next ICMP entry's errno, and to 0 after the last (sock_dequeue_err_skb,
 * which counts SO_EE_ORIGIN_ICMP6 entries as ICMP entries too).
 *
 * IPv6 differences: the entry comes as (IPPROTO_IPV6, IPV6_RECVERR) with
 * origin SO_EE_ORIGIN_ICMP6 (ICMPv6 type and code: 1/4 for port
 * unreachable, errno ECONNREFUSED), and msg_name and the offender are
 * sockaddr_in6.
 *
 * Error convention as in addon.h: bad arguments throw, I/O returns numbers.
 * No allocation per entry: results go to a caller-owned Float64Array.
 */
#include "addon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* Numbers per entry in the output: [destination address words, destination
 * port, errno, type, code, offender address words]. */
#define UDP_ERR_FIELDS(family) (2 * ADDR_WORDS(family) + 4)

/* udpReadErrors(fd, out, max) / udpReadErrors6(fd, out, max) -> entries
 * written (>= 0), or -errno when the very first recvmsg failed with something
 * other than EAGAIN (EBADF, ENOTSOCK, ...). Drains the error queue until it
 * is empty or `max` entries (capped by out.length / fields) were written.
 * With A = 1 address word for IPv4 (host order), 4 for IPv6 (addon.h), entry
 * i is out[i*F .. i*F+F-1], F = 2A + 4:
 *
 *   [0, A)       destination address of the datagram that failed
 *   [A]          its destination port
 *   [A+1]        ee_errno (ECONNREFUSED for port unreachable, EHOSTUNREACH, ...)
 *   [A+2] ICMP(v6) type   [A+3] ICMP(v6) code
 *   [A+4, 2A+4)  the address that sent the error (SO_EE_OFFENDER), 0 if none
 *
 * Entries of other origins (SO_EE_ORIGIN_LOCAL: e.g. EMSGSIZE from a too-big
 * send) are consumed and not reported. The quoted payload is not copied. */
static napi_value udp_read_errors(napi_env env, napi_callback_info info, int family) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t max;
  if (argc < 3 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  napi_typedarray_type type;
  size_t out_len = 0;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, argv[1], &type, &out_len, &ptr, NULL, NULL) != napi_ok ||
      type != napi_float64_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "argument 'out' must be a Float64Array");
    return NULL;
  }
  if (!arg_uint32(env, argv[2], "max", &max)) return NULL;
  const bool v6 = family == AF_INET6;
  const size_t aw = ADDR_WORDS(family), fields = UDP_ERR_FIELDS(family);
  const int level = v6 ? IPPROTO_IPV6 : IPPROTO_IP, cmsg_type = v6 ? IPV6_RECVERR : IP_RECVERR;
  const uint8_t origin = v6 ? SO_EE_ORIGIN_ICMP6 : SO_EE_ORIGIN_ICMP;
  double *out = ptr;
  size_t limit = max;
  if (limit > out_len / fields) limit = out_len / fields;

  /* Room for one RECVERR message (extended error + offender address) and
   * slack for anything else the kernel might add. */
  union {
    char buf[CMSG_SPACE(sizeof(struct sock_extended_err) + sizeof(struct sockaddr_in6)) + 64];
    struct cmsghdr align;
  } control;

  size_t n = 0;
  bool first = true;
  while (n < limit) {
    struct sockaddr_in6 dst; /* room for either family */
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &dst;
    msg.msg_namelen = sizeof dst;
    /* No payload buffer: the quoted datagram is truncated away (MSG_TRUNC). */
    msg.msg_iov = NULL;
    msg.msg_iovlen = 0;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof control.buf;
    ssize_t r = recvmsg(fd, &msg, MSG_ERRQUEUE | MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      if (first) return make_int(env, -errno);
      break;
    }
    first = false;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != level || c->cmsg_type != cmsg_type) continue;
      if (c->cmsg_len < CMSG_LEN(sizeof(struct sock_extended_err))) continue;
      struct sock_extended_err ee;
      memcpy(&ee, CMSG_DATA(c), sizeof ee);
      if (ee.ee_origin != origin) continue;
      uint32_t words[2 * 4];
      const uint16_t port = put_addr_words(words, &dst, msg.msg_namelen, family);
      const size_t offender_len = c->cmsg_len - CMSG_LEN(sizeof ee);
      put_addr_words(words + aw, CMSG_DATA(c) + sizeof ee, (socklen_t)offender_len, family);
      double *e = out + n * fields;
      for (size_t k = 0; k < aw; k++) {
        e[k] = words[k];
        e[aw + 4 + k] = words[aw + k];
      }
      e[aw] = port;
      e[aw + 1] = ee.ee_errno;
      e[aw + 2] = ee.ee_type;
      e[aw + 3] = ee.ee_code;
      n++;
      break; /* one extended error per queued datagram */
    }
  }
  return make_int(env, (int64_t)n);
}

static napi_value js_udp_read_errors(napi_env env, napi_callback_info info) {
  return udp_read_errors(env, info, AF_INET);
}
static napi_value js_udp_read_errors6(napi_env env, napi_callback_info info) {
  return udp_read_errors(env, info, AF_INET6);
}

napi_status udp_err_register(napi_env env, napi_value exports) {
  napi_status s = export_function(env, exports, "udpReadErrors", js_udp_read_errors);
  if (s != napi_ok) return s;
  return export_function(env, exports, "udpReadErrors6", js_udp_read_errors6);
}
