/*
 * tap.c: the N-API side of the TAP: attach() (the forked child that joins
 * the target's namespaces lives in attach.c, shared with the launcher),
 * TUNSETOFFLOAD, TUNSETVNETHDRSZ, TUNGETIFF and O_NONBLOCK on a TAP fd.
 *
 * attach() gathers its options into a struct attach_req before fork() (the
 * child never touches N-API or the heap), runs attach_run(), and turns its
 * failures into the errors the CLI prints: ERR_USERNET_CHILD_FAILED
 * ("child failed(N)", exitStatus N) and ERR_USERNET_PARENT_FAILED (perror's
 * text, errno; ETIMEDOUT for a child killed for not finishing in time).
 */
#include "addon.h"
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <linux/if_tun.h>

/* Reads property `name` of `obj` as a string into buf; missing/undefined/null
 * leaves *present false when optional. Throws and returns false otherwise. */
static bool get_string_prop(napi_env env, napi_value obj, const char *name, char *buf, size_t size,
                            bool optional, bool *present) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return false;
  if (optional && (t == napi_undefined || t == napi_null)) {
    *present = false;
    return true;
  }
  char msg[128];
  if (t != napi_string) {
    snprintf(msg, sizeof msg, "attach: '%s' must be a string", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return false;
  }
  size_t len = 0;
  napi_get_value_string_utf8(env, v, NULL, 0, &len);
  if (len == 0 || len >= size) {
    snprintf(msg, sizeof msg, "attach: '%s' must be 1..%zu bytes long", name, size - 1);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  napi_get_value_string_utf8(env, v, buf, size, &len);
  if (strlen(buf) != len) {
    snprintf(msg, sizeof msg, "attach: '%s' must not contain NUL", name);
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return false;
  }
  *present = true;
  return true;
}

static bool get_uint32_prop(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok) return false;
  char arg[64];
  snprintf(arg, sizeof arg, "configure.%s", name);
  return arg_uint32(env, v, arg, out);
}

/* Property `name` of `obj` as a uint32; missing/undefined leaves *out alone. */
static bool get_opt_uint32_prop(napi_env env, napi_value obj, const char *name, uint32_t *out) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return false;
  return t == napi_undefined || arg_uint32(env, v, name, out);
}

/* Property `name` of `obj` as exactly `size` bytes of a Uint8Array into out.
 * Missing/undefined/null: *present false when optional. Throws and returns
 * false otherwise. */
static bool get_bytes_prop(napi_env env, napi_value obj, const char *name, uint8_t *out, size_t size, bool optional,
                           bool *present) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, obj, name, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return false;
  *present = false;
  if (optional && (t == napi_undefined || t == napi_null)) return true;
  char arg[64];
  snprintf(arg, sizeof arg, "configure.%s", name);
  uint8_t *data;
  size_t len;
  if (!arg_bytes(env, v, arg, &data, &len)) return false;
  if (len != size) {
    char msg[128];
    snprintf(msg, sizeof msg, "attach: '%s' must be %zu bytes", arg, size);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return false;
  }
  memcpy(out, data, size);
  *present = true;
  return true;
}

/* configure.ipv6: null/undefined (not asked), or { addr, prefixLength,
 * gateway } with 16-byte addresses. */
static bool parse_configure6(napi_env env, napi_value cfg, struct attach_req *rq) {
  napi_value v;
  napi_valuetype t;
  if (napi_get_named_property(env, cfg, "ipv6", &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_undefined || t == napi_null) return true;
  if (t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "attach: 'configure.ipv6' must be an object or null");
    return false;
  }
  bool present;
  if (!get_bytes_prop(env, v, "addr", rq->addr6, 16, false, &present) ||
      !get_bytes_prop(env, v, "gateway", rq->gateway6, 16, false, &present) ||
      !get_uint32_prop(env, v, "prefixLength", &rq->prefix6))
    return false;
  if (rq->prefix6 > 128) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "attach: 'configure.ipv6.prefixLength' must be <= 128");
    return false;
  }
  rq->has_ipv6 = true;
  return true;
}

static bool parse_configure(napi_env env, napi_value cfg, struct attach_req *rq) {
  if (!get_uint32_prop(env, cfg, "mtu", &rq->mtu) || !get_uint32_prop(env, cfg, "addr", &rq->addr) ||
      !get_uint32_prop(env, cfg, "netmask", &rq->netmask) || !get_uint32_prop(env, cfg, "gateway", &rq->gateway))
    return false;
  return get_bytes_prop(env, cfg, "mac", rq->mac, 6, true, &rq->has_mac) && parse_configure6(env, cfg, rq);
}

static bool parse_attach_opts(napi_env env, napi_value opts, struct attach_req *rq) {
  napi_valuetype t;
  if (napi_typeof(env, opts, &t) != napi_ok || t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "attach: options must be an object");
    return false;
  }
  bool present;
  if (!get_string_prop(env, opts, "netnsPath", rq->netns, sizeof rq->netns, false, &present)) return false;
  if (!get_string_prop(env, opts, "usernsPath", rq->userns, sizeof rq->userns, true, &rq->has_userns)) return false;
  if (!get_string_prop(env, opts, "tapName", rq->tapname, sizeof rq->tapname, false, &present)) return false;
  attach_set_ifname(rq);

  napi_value v;
  if (!get_opt_uint32_prop(env, opts, "childWaitMs", &rq->wait_ms)) return false;
  if (napi_get_named_property(env, opts, "testStallChild", &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok)
    return false;
  if (t != napi_undefined && napi_get_value_bool(env, v, &rq->test_stall) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "attach: 'testStallChild' must be a boolean");
    return false;
  }
  if (napi_get_named_property(env, opts, "vnetHdr", &v) != napi_ok) return false;
  if (napi_get_value_bool(env, v, &rq->vnet_hdr) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "attach: 'vnetHdr' must be a boolean");
    return false;
  }

  if (napi_get_named_property(env, opts, "quiet", &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok) return false;
  if (t != napi_undefined && napi_get_value_bool(env, v, &rq->quiet) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "attach: 'quiet' must be a boolean");
    return false;
  }

  if (napi_get_named_property(env, opts, "configure", &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok)
    return false;
  if (t == napi_undefined || t == napi_null) {
    rq->configure = false;
    return true;
  }
  if (t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "attach: 'configure' must be an object or null");
    return false;
  }
  rq->configure = true;
  return parse_configure(env, v, rq);
}

static void throw_with_props(napi_env env, const char *code, const char *message, const char *int_prop,
                             int64_t int_value) {
  napi_value err = make_error(env, code, message);
  if (int_prop != NULL) napi_set_named_property(env, err, int_prop, make_int(env, int_value));
  napi_throw(env, err);
}

/* attach({ netnsPath, usernsPath, tapName, vnetHdr, quiet, configure, childWaitMs?,
 * testStallChild? }) -> { fd, vnetHdr, ipv6Errno } */
static napi_value js_attach(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "attach: options must be an object");
    return NULL;
  }
  /* ~8 KB of paths: static storage would make attach non-reentrant across
   * worker threads, and the main thread's stack has room. */
  struct attach_req rq;
  memset(&rq, 0, sizeof rq);
  if (!parse_attach_opts(env, argv[0], &rq)) return NULL;

  struct attach_result res;
  attach_run(&rq, &res);
  switch (res.outcome) {
    case ATTACH_CHILD_FAILED:
      throw_with_props(env, "ERR_USERNET_CHILD_FAILED", res.message, "exitStatus", res.exit_status);
      return NULL;
    case ATTACH_PARENT_FAILED:
      throw_with_props(env, "ERR_USERNET_PARENT_FAILED", res.message, "errno", res.err);
      return NULL;
    case ATTACH_OK:
      break;
  }

  /* The fd is ours until JS has it: every failure below closes it. */
  napi_value result, vnet, fd, ipv6;
  if (napi_create_object(env, &result) != napi_ok || napi_create_int32(env, res.fd, &fd) != napi_ok ||
      napi_set_named_property(env, result, "fd", fd) != napi_ok || napi_get_boolean(env, rq.vnet_hdr, &vnet) != napi_ok ||
      napi_set_named_property(env, result, "vnetHdr", vnet) != napi_ok ||
      napi_create_int32(env, res.ipv6_errno, &ipv6) != napi_ok ||
      napi_set_named_property(env, result, "ipv6Errno", ipv6) != napi_ok) {
    close(res.fd);
    addon_throw_last_error(env, "attach");
    return NULL;
  }
  return result;
}

/* setOffload(fd, mask) -> 0 | errno. Probing is the intended use: the kernel
 * refuses any bit it does not consume with EINVAL (tun.c set_offload). The
 * masks, USO4/USO6 (0x20/0x40, Linux 6.2) included, live in tap.ts: the uapi
 * headers of Debian 12 predate USO. */
static napi_value js_set_offload(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  uint32_t mask;
  if (argc < 2 || !arg_int32(env, argv[0], "fd", &fd) || !arg_uint32(env, argv[1], "mask", &mask)) return NULL;
  /* Passed by value, as an unsigned long, despite the _IOW(unsigned int). */
  if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)mask) < 0) return make_int(env, errno);
  return make_int(env, 0);
}

/* setVnetHdr(fd) -> 0 | errno: header size 10, little-endian, for an fd that
 * was opened with IFF_VNET_HDR elsewhere (fromFd). */
static napi_value js_set_vnet_hdr(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  int hdr_len = VNET_HDR_LEN, le = 1;
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0) return make_int(env, errno);
  if (ioctl(fd, TUNSETVNETLE, &le) < 0 && errno != EINVAL && errno != ENOTTY) return make_int(env, errno);
  return make_int(env, 0);
}

/* tunInfo(fd) -> { name, flags, vnetHdrSize } | null when fd is not an
 * attached tun/tap fd. */
static napi_value js_tun_info(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  napi_value result = NULL, name;
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) {
    NAPI_CALL(env, napi_get_null(env, &result));
    return result;
  }
  int hdr_len = 0;
  if (ioctl(fd, TUNGETVNETHDRSZ, &hdr_len) < 0) hdr_len = -1;
  NAPI_CALL(env, napi_create_object(env, &result));
  NAPI_CALL(env, napi_create_string_utf8(env, ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ), &name));
  NAPI_CALL(env, napi_set_named_property(env, result, "name", name));
  NAPI_CALL(env, napi_set_named_property(env, result, "flags", make_int(env, (uint16_t)ifr.ifr_flags)));
  NAPI_CALL(env, napi_set_named_property(env, result, "vnetHdrSize", make_int(env, hdr_len)));
  return result;
}

/* adoptFd(fd) -> 0 | errno: O_NONBLOCK and FD_CLOEXEC on an fd handed to
 * fromFd (a supervisor's, or the launcher's, which had to leave it
 * inheritable across its exec of Node). A blocking read inside readBatch
 * would stall the whole event loop, and a process Node spawns must not
 * inherit the TAP. */
static napi_value js_adopt_fd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int32_t fd;
  if (argc < 1 || !arg_int32(env, argv[0], "fd", &fd)) return NULL;
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return make_int(env, errno);
  int fdfl = fcntl(fd, F_GETFD);
  if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0) return make_int(env, errno);
  return make_int(env, 0);
}

napi_status tap_register(napi_env env, napi_value exports) {
  napi_status s;
  if ((s = export_function(env, exports, "attach", js_attach)) != napi_ok) return s;
  if ((s = export_function(env, exports, "setOffload", js_set_offload)) != napi_ok) return s;
  if ((s = export_function(env, exports, "setVnetHdr", js_set_vnet_hdr)) != napi_ok) return s;
  if ((s = export_function(env, exports, "adoptFd", js_adopt_fd)) != napi_ok) return s;
  return export_function(env, exports, "tunInfo", js_tun_info);
}
