/*
 * Module entry point and small helpers shared by the addon's source files:
 * argument parsing, socket addresses of both families, and the one exported
 * function that belongs to no socket kind (inet6Pton). See addon.h for the
 * layout, the address conventions and the error convention.
 */
#include "addon.h"

#include <malloc.h>
#include <sys/mman.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void addon_throw_last_error(napi_env env, const char *what) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) return;
  const napi_extended_error_info *info = NULL;
  napi_get_last_error_info(env, &info);
  char msg[256];
  snprintf(msg, sizeof msg, "usernet native: %s failed: %s", what,
           info != NULL && info->error_message != NULL ? info->error_message : "unknown N-API error");
  napi_throw_error(env, "ERR_USERNET_NATIVE", msg);
}

static bool type_error(napi_env env, const char *name, const char *expected) {
  char msg[160];
  snprintf(msg, sizeof msg, "argument '%s' must be %s", name, expected);
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
  return false;
}

bool arg_int32(napi_env env, napi_value v, const char *name, int32_t *out) {
  if (napi_get_value_int32(env, v, out) != napi_ok) return type_error(env, name, "a number");
  return true;
}

bool arg_uint32(napi_env env, napi_value v, const char *name, uint32_t *out) {
  if (napi_get_value_uint32(env, v, out) != napi_ok) return type_error(env, name, "a number");
  return true;
}

bool arg_bytes(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len) {
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_uint8_array)
    return type_error(env, name, "a Uint8Array");
  /* A zero-length view may carry a NULL pointer; callers index only within len. */
  *data = ptr;
  return true;
}

bool arg_u32array(napi_env env, napi_value v, const char *name, uint32_t **data, size_t *len) {
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, v, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_uint32_array)
    return type_error(env, name, "a Uint32Array");
  *data = ptr;
  return true;
}

bool arg_batch(napi_env env, napi_callback_info info, const char *what, uint32_t min_slot, size_t meta_stride,
               batch_args *out) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    addon_throw_last_error(env, what);
    return false;
  }
  size_t buf_len, meta_len;
  uint32_t max_count;
  if (argc < 5) return type_error(env, "arguments", "(fd, buf, meta, maxCount, slotSize)");
  if (!arg_int32(env, argv[0], "fd", &out->fd) || !arg_bytes(env, argv[1], "buf", &out->buf, &buf_len) ||
      !arg_u32array(env, argv[2], "meta", &out->meta, &meta_len) || !arg_uint32(env, argv[3], "maxCount", &max_count) ||
      !arg_uint32(env, argv[4], "slotSize", &out->slot))
    return false;
  if (out->slot < min_slot || out->slot % 64 != 0) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: slotSize must be >= %u and a multiple of 64", what, min_slot);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  size_t limit = max_count;
  if (limit > buf_len / out->slot) limit = buf_len / out->slot;
  if (limit > meta_len / meta_stride) limit = meta_len / meta_stride;
  out->limit = limit;
  return true;
}

bool arg_function(napi_env env, napi_value v, const char *name) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok || t != napi_function) return type_error(env, name, "a function");
  return true;
}

bool arg_slice(napi_env env, napi_value *argv, const char *what, uint8_t **p, uint32_t *len) {
  uint8_t *buf;
  size_t buf_len;
  uint32_t off;
  if (!arg_bytes(env, argv[0], "buf", &buf, &buf_len) || !arg_uint32(env, argv[1], "off", &off) ||
      !arg_uint32(env, argv[2], "len", len))
    return false;
  if ((size_t)off > buf_len || (size_t)*len > buf_len - off) {
    char msg[96];
    snprintf(msg, sizeof msg, "%s: range outside the buffer", what);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  *p = *len != 0 ? buf + off : buf;
  return true;
}

void sock_addr_ipv4(sock_addr *a, uint32_t addr, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->u.in4.sin_family = AF_INET;
  a->u.in4.sin_port = htons(port);
  a->u.in4.sin_addr.s_addr = htonl(addr);
  a->len = sizeof a->u.in4;
}

void sock_addr_ipv6(sock_addr *a, const uint8_t *bytes, uint16_t port) {
  memset(a, 0, sizeof *a);
  a->u.in6.sin6_family = AF_INET6;
  a->u.in6.sin6_port = htons(port);
  memcpy(&a->u.in6.sin6_addr, bytes, 16);
  a->len = sizeof a->u.in6;
}

bool arg_present(napi_env env, napi_value *argv, size_t argc, size_t i) {
  napi_valuetype t;
  return argc > i && napi_typeof(env, argv[i], &t) == napi_ok && t != napi_undefined && t != napi_null;
}

/* A Uint8Array of exactly 16 bytes (an IPv6 address). */
static bool arg_ipv6(napi_env env, napi_value v, const char *name, const uint8_t **bytes) {
  uint8_t *data;
  size_t len;
  if (!arg_bytes(env, v, name, &data, &len)) return false;
  if (len != 16) return type_error(env, name, "a 16-byte Uint8Array (an IPv6 address)");
  *bytes = data;
  return true;
}

bool arg_opt_local(napi_env env, napi_value *argv, size_t argc, size_t i, const char *name, int family,
                   sock_addr *out) {
  static const uint8_t any6[16] = {0};
  if (family == AF_INET6) {
    const uint8_t *bytes = any6;
    if (arg_present(env, argv, argc, i) && !arg_ipv6(env, argv[i], name, &bytes)) return false;
    sock_addr_ipv6(out, bytes, 0);
    return true;
  }
  uint32_t addr = 0;
  if (arg_present(env, argv, argc, i) && !arg_uint32(env, argv[i], name, &addr)) return false;
  sock_addr_ipv4(out, addr, 0);
  return true;
}

bool arg_ip(napi_env env, napi_value v, const char *name, uint16_t port, sock_addr *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) {
    addon_throw_last_error(env, "napi_typeof");
    return false;
  }
  if (t == napi_number) {
    uint32_t addr;
    if (!arg_uint32(env, v, name, &addr)) return false;
    sock_addr_ipv4(out, addr, port);
    return true;
  }
  const uint8_t *bytes;
  if (!arg_ipv6(env, v, name, &bytes)) return false;
  sock_addr_ipv6(out, bytes, port);
  return true;
}

bool arg_ipv6_at(napi_env env, napi_value buf, napi_value off, const char *name, uint16_t port, sock_addr *out) {
  uint8_t *data;
  size_t len;
  uint32_t at;
  if (!arg_bytes(env, buf, name, &data, &len) || !arg_uint32(env, off, name, &at)) return false;
  if ((size_t)at > len || len - at < 16) {
    char msg[128];
    snprintf(msg, sizeof msg, "argument '%s': 16 bytes at the offset lie outside the buffer", name);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  sock_addr_ipv6(out, data + at, port);
  return true;
}

int open_socket(int family, int type, int protocol) {
  int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol);
  if (fd < 0) return -errno;
  int one = 1;
  if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0) {
    int e = errno;
    close(fd);
    return -e;
  }
  return fd;
}

int bind_addr(int fd, const sock_addr *a) { return bind(fd, &a->u.sa, a->len) < 0 ? errno : 0; }

int64_t send_to(int fd, const uint8_t *p, size_t len, const sock_addr *dst) {
  ssize_t r;
  do {
    r = sendto(fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL, &dst->u.sa, dst->len);
  } while (r < 0 && errno == EINTR);
  return r < 0 ? -errno : (int64_t)r;
}

uint16_t put_addr_words(uint32_t *words, const void *name, socklen_t namelen, int family) {
  sock_addr a;
  a.u.sa.sa_family = AF_UNSPEC;
  memcpy(&a.u, name, namelen < sizeof a.u ? namelen : sizeof a.u);
  if (family == AF_INET6 && namelen >= sizeof a.u.in6 && a.u.sa.sa_family == AF_INET6) {
    const uint8_t *b = a.u.in6.sin6_addr.s6_addr;
    for (int k = 0; k < 4; k++, b += 4)
      words[k] = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    return ntohs(a.u.in6.sin6_port);
  }
  if (family == AF_INET && namelen >= sizeof a.u.in4 && a.u.sa.sa_family == AF_INET) {
    words[0] = ntohl(a.u.in4.sin_addr.s_addr);
    return ntohs(a.u.in4.sin_port);
  }
  memset(words, 0, ADDR_WORDS(family) * sizeof *words);
  return 0;
}

napi_value js_sock_local_port(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  sock_addr a;
  memset(&a, 0, sizeof a);
  socklen_t sl = sizeof a.u;
  if (getsockname(fd, &a.u.sa, &sl) < 0) return make_int(env, -errno);
  if (a.u.sa.sa_family == AF_INET6 && sl >= sizeof a.u.in6) return make_int(env, ntohs(a.u.in6.sin6_port));
  if (a.u.sa.sa_family == AF_INET && sl >= sizeof a.u.in4) return make_int(env, ntohs(a.u.in4.sin_port));
  return make_int(env, -EAFNOSUPPORT);
}

/* inet6Pton(text, out, off) -> true when `text` is an IPv6 literal as glibc's
 * inet_pton(AF_INET6) accepts it (no %zone, no brackets; an embedded dotted
 * quad is fine), its 16 bytes then written to out[off, off+16); false (out
 * untouched) otherwise. For addresses that arrive as text, once per socket or
 * connection (--outbound-addr6, a TCP relay destination), never per packet. */
static napi_value js_inet6_pton(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *out;
  size_t out_len;
  uint32_t off;
  if (argc < 3 || !arg_bytes(env, argv[1], "out", &out, &out_len) || !arg_uint32(env, argv[2], "off", &off)) return NULL;
  if ((size_t)off > out_len || out_len - off < 16) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "inet6Pton: 16 bytes at off lie outside out");
    return NULL;
  }
  /* The longest literal is 45 characters (ffff:...:ffff:255.255.255.255). */
  char text[64];
  size_t len = 0;
  napi_valuetype t;
  napi_value r;
  bool ok = false;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string) {
    type_error(env, "text", "a string");
    return NULL;
  }
  NAPI_CALL(env, napi_get_value_string_utf8(env, argv[0], text, sizeof text, &len));
  struct in6_addr a;
  /* A longer string was cut to fit: not a literal. strlen: no NUL inside. */
  if (len < sizeof text - 1 && strlen(text) == len && inet_pton(AF_INET6, text, &a) == 1) {
    memcpy(out + off, &a, 16);
    ok = true;
  }
  NAPI_CALL(env, napi_get_boolean(env, ok, &r));
  return r;
}

/* mallocTrim() -> bytes the heap held before, as mallinfo2 counts them.
 * glibc keeps what it frees: large blocks (the backing stores of ArrayBuffers
 * from bulk traffic) stay in its arenas once its dynamic mmap threshold has
 * risen, so the RSS of a process that moved gigabytes stays up after the
 * garbage collector released them. malloc_trim(0) returns the free pages of
 * every arena to the kernel. */
static napi_value js_malloc_trim(napi_env env, napi_callback_info info) {
  (void)info;
  struct mallinfo2 before = mallinfo2();
  malloc_trim(0);
  return make_int(env, (int64_t)before.fordblks);
}

/* releasePages(buf) -> bytes given back: madvise(MADV_DONTNEED) on the whole
 * pages inside buf, so a preallocated buffer that bulk traffic touched end to
 * end (the TAP read slots, the output arena) stops counting in the RSS; the
 * pages come back zeroed on the next touch. Only for buffers whose contents
 * no longer matter. */
static napi_value js_release_pages(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *data;
  size_t len;
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "releasePages: argument 'buf' is missing");
    return NULL;
  }
  if (!arg_bytes(env, argv[0], "releasePages: buf", &data, &len)) return NULL;
  const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t start = ((uintptr_t)data + page - 1) & ~(page - 1);
  uintptr_t end = ((uintptr_t)data + len) & ~(page - 1);
  if (end <= start) return make_int(env, 0);
  if (madvise((void *)start, end - start, MADV_DONTNEED) != 0) return make_int(env, -errno);
  return make_int(env, (int64_t)(end - start));
}

napi_value make_int(napi_env env, int64_t v) {
  napi_value r = NULL;
  napi_create_int64(env, v, &r);
  return r;
}

napi_value make_fd_result(napi_env env, int fd) {
  napi_value r;
  if (napi_create_int32(env, fd, &r) == napi_ok) return r;
  if (fd >= 0) close(fd);
  addon_throw_last_error(env, "napi_create_int32");
  return NULL;
}

napi_value make_undefined(napi_env env) {
  napi_value r = NULL;
  napi_get_undefined(env, &r);
  return r;
}

napi_value make_error(napi_env env, const char *code, const char *message) {
  napi_value msg, codev, err = NULL;
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &codev);
  napi_create_error(env, codev, msg, &err);
  return err;
}

void report_pending_exception(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) != napi_ok || !pending) return;
  napi_value err;
  if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
}

napi_status export_function(napi_env env, napi_value exports, const char *name, napi_callback cb) {
  napi_value fn;
  napi_status s = napi_create_function(env, name, NAPI_AUTO_LENGTH, cb, NULL, &fn);
  if (s != napi_ok) return s;
  return napi_set_named_property(env, exports, name, fn);
}

NAPI_MODULE_INIT() {
  if (tap_register(env, exports) != napi_ok || io_register(env, exports) != napi_ok ||
      poll_register(env, exports) != napi_ok || busy_poll_register(env, exports) != napi_ok || ping_register(env, exports) != napi_ok ||
      udp_register(env, exports) != napi_ok || udp_err_register(env, exports) != napi_ok ||
      stream_register(env, exports) != napi_ok || seccomp_register(env, exports) != napi_ok ||
      export_function(env, exports, "inet6Pton", js_inet6_pton) != napi_ok ||
      export_function(env, exports, "mallocTrim", js_malloc_trim) != napi_ok ||
      export_function(env, exports, "releasePages", js_release_pages) != napi_ok) {
    addon_throw_last_error(env, "module registration");
    return NULL;
  }
  return exports;
}
